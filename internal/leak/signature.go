package leak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
)

// KeySet gives a reporter's public signing key by its identifier.
type KeySet interface {
	PublicKey(ctx context.Context, id string) (*ecdsa.PublicKey, error)
}

// ErrUnknownKey is a key identifier the reporter does not publish.
var ErrUnknownKey = errors.New("unknown signing key identifier")

// Bounds of the signature headers: a P-256 ASN.1 signature is at most 72
// bytes (96 in base64); GitHub's identifiers are 64 hex digits.
const (
	maxKeyID     = 128
	maxSignature = 256
)

// verifySignature checks an ECDSA P-256 SHA-256 signature (ASN.1 DER,
// base64) over the raw body.
func verifySignature(pub *ecdsa.PublicKey, body []byte, sigB64 string) error {
	if len(sigB64) > maxSignature {
		return errors.New("signature too long")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return errors.New("signature is not base64")
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errors.New("signature does not match the body")
	}
	return nil
}

// parsePublicKey reads a PEM "PUBLIC KEY" (PKIX) that must be ECDSA P-256.
func parsePublicKey(pemText string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("public key is not ECDSA P-256")
	}
	return pub, nil
}
