package devenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certs are the files a local aggregated setup needs, as a cluster has
// them: kube-apiserver's front-proxy client certificate (signed by the CA
// it publishes for request-header authentication), and the API server's
// serving certificate, signed by a CA that goes into the APIService.
type Certs struct {
	Dir                     string
	FrontProxyCA            string
	FrontProxyClientCert    string
	FrontProxyClientKey     string
	ServingCA               string
	ServingCert, ServingKey string
	ServingCAPEM            []byte
}

// FrontProxyClientName is the common name kube-apiserver's proxy client
// certificate carries; the API server trusts request headers only from it.
const FrontProxyClientName = "front-proxy-client"

// WriteCerts creates the certificates in dir.
func WriteCerts(dir string, servingNames []string) (*Certs, error) {
	c := &Certs{Dir: dir}
	proxyCA, proxyKey, err := newCA(dir, "front-proxy-ca")
	if err != nil {
		return nil, err
	}
	c.FrontProxyCA = filepath.Join(dir, "front-proxy-ca.crt")
	c.FrontProxyClientCert, c.FrontProxyClientKey, err = issue(dir, "front-proxy-client", proxyCA, proxyKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: FrontProxyClientName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	servingCA, servingKey, err := newCA(dir, "serving-ca")
	if err != nil {
		return nil, err
	}
	c.ServingCA = filepath.Join(dir, "serving-ca.crt")
	c.ServingCAPEM = pemCert(servingCA)
	c.ServingCert, c.ServingKey, err = issue(dir, "serving", servingCA, servingKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: servingNames[0]},
		DNSNames:    servingNames,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return c, err
}

func newCA(dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", name, err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key, os.WriteFile(filepath.Join(dir, name+".crt"), pemCert(ca), 0o600)
}

func issue(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("issue %s: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}
