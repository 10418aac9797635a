// Package tlstest makes throw-away certificates for tests of TLS code: a CA
// and a server certificate signed by it, generated with crypto/x509 at run
// time (no key is ever committed), also written as PEM files for external
// peers (openssl, curl).
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// PKI is a CA and one server certificate (ECDSA P-256, valid from an hour
// ago for a day) for the DNS name given to New and for 127.0.0.1 and ::1.
type PKI struct {
	// Pool trusts the CA (for tls.Config.RootCAs).
	Pool *x509.CertPool
	// Cert is the server certificate with its key.
	Cert tls.Certificate
	// CertFile, KeyFile and CAFile are PEM files in the directory given to New.
	CertFile, KeyFile, CAFile string
}

// New generates a PKI for name and writes cert.pem, key.pem and ca.pem into
// dir (e.g. t.TempDir()).
func New(dir, name string) (*PKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gyre test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames:    []string{name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	p := &PKI{Pool: x509.NewCertPool()}
	p.Pool.AddCert(ca)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if p.Cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, err
	}
	p.CertFile, p.KeyFile, p.CAFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	for f, b := range map[string][]byte{p.CertFile: certPEM, p.KeyFile: keyPEM, p.CAFile: caPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// ServerConfig is a server tls.Config with the certificate.
func (p *PKI) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Cert}}
}

// ClientConfig is a client tls.Config trusting the CA, for serverName.
func (p *PKI) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: p.Pool, ServerName: serverName}
}
