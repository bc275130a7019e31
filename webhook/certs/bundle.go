package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"time"
)

// maxBundle bounds the CAs in a bundle: replicas restarting in a loop
// must not grow the webhook configurations without limit. The newest are
// kept, and ours always.
const maxBundle = 32

// mergeBundle returns the bundle of our CA and the unexpired CAs this
// package made that the given bundles hold. The result depends only on
// the set of CAs, not on which replica computes it, so replicas agree and
// an unchanged bundle is not written again.
func mergeBundle(ours []byte, now time.Time, bundles ...[]byte) []byte {
	own := parseBundle(ours)[0]
	seen := map[string]bool{string(own.Raw): true}
	var others []*x509.Certificate
	for _, b := range bundles {
		for _, c := range parseBundle(b) {
			if c.Subject.CommonName != caCommonName || !now.Before(c.NotAfter) || seen[string(c.Raw)] {
				continue
			}
			seen[string(c.Raw)] = true
			others = append(others, c)
		}
	}
	newestFirst(others)
	if len(others) > maxBundle-1 {
		others = others[:maxBundle-1]
	}
	all := append(others, own)
	newestFirst(all)
	var out []byte
	for _, c := range all {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func newestFirst(certs []*x509.Certificate) {
	slices.SortFunc(certs, func(a, b *x509.Certificate) int {
		if c := b.NotAfter.Compare(a.NotAfter); c != 0 {
			return c
		}
		return bytes.Compare(a.Raw, b.Raw)
	})
}

// parseBundle reads the certificates of a PEM bundle, skipping anything
// that is not one.
func parseBundle(b []byte) []*x509.Certificate {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return certs
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			certs = append(certs, c)
		}
	}
}
