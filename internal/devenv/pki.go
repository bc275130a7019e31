package devenv

import (
	"crypto/ecdsa"
	"crypto/x509"
)

// NewCA writes a self-signed CA as dir/name.crt and returns it with its key
// (kept in memory: the real-node e2e signs its component certificates).
func NewCA(dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	return newCA(dir, name)
}

// IssueCert writes a certificate from tmpl signed by ca, and its key, as
// dir/name.crt and dir/name.key.
func IssueCert(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certPath, keyPath string, err error) {
	return issue(dir, name, ca, caKey, tmpl)
}
