package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/zmap/zlint/v3/util"

	"github.com/mailca/mailca/internal/keys"
)

// Issuer is a CA certificate with the key that signs under it.
type Issuer struct {
	Cert   *x509.Certificate
	Chain  []*x509.Certificate // Cert's own issuers, nearest first; may end at a root
	Signer crypto.Signer

	// ID names the issuer in URLs and storage: the first eight bytes of its
	// subject key identifier in hex. It is stable for as long as the key is.
	ID string

	// URLs put into the certificates this issuer signs.
	CRLURL, OCSPURL, IssuerURL string

	sigAlg x509.SignatureAlgorithm
}

// NewIssuer checks that cert is a CA certificate that may sign S/MIME
// certificates, that signer holds its key, and returns the Issuer. baseURL is
// the public HTTP(S) origin that serves CRLs, OCSP and CA certificates.
func NewIssuer(cert *x509.Certificate, chain []*x509.Certificate, signer crypto.Signer, baseURL string) (*Issuer, error) {
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, errors.New("ca: issuer certificate is not a CA certificate")
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: issuer certificate may not sign certificates (no keyCertSign)")
	}
	if !allowsEmailProtection(cert) {
		return nil, errors.New("ca: issuer certificate's extended key usage does not allow email protection")
	}
	if !keys.SamePublicKey(signer.Public(), cert.PublicKey) {
		return nil, errors.New("ca: issuer key does not match the issuer certificate")
	}
	if len(cert.SubjectKeyId) < 8 {
		return nil, errors.New("ca: issuer certificate has no subject key identifier")
	}
	sigAlg, err := signatureAlgorithm(signer.Public())
	if err != nil {
		return nil, err
	}
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	id := hex.EncodeToString(cert.SubjectKeyId[:8])
	return &Issuer{
		Cert:      cert,
		Chain:     chain,
		Signer:    signer,
		ID:        id,
		CRLURL:    base + "/crl/" + id + ".crl",
		OCSPURL:   base + "/ocsp",
		IssuerURL: base + "/ca/" + id + ".crt",
		sigAlg:    sigAlg,
	}, nil
}

// ChainPEM returns the issuer certificate followed by its chain, as PEM.
func (i *Issuer) ChainPEM() []byte {
	var b []byte
	for _, c := range append([]*x509.Certificate{i.Cert}, i.Chain...) {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// Root returns the last certificate of the chain when it is self-signed.
func (i *Issuer) Root() *x509.Certificate {
	if len(i.Chain) == 0 {
		return nil
	}
	r := i.Chain[len(i.Chain)-1]
	if r.CheckSignatureFrom(r) != nil {
		return nil
	}
	return r
}

func allowsEmailProtection(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageEmailProtection || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// signatureAlgorithm picks the signature algorithm for a CA key: SHA-256
// with P-256 and RSA, SHA-384 with P-384, as the BR (7.1.3.2) pair them.
// RSA uses PKCS#1 v1.5 rather than PSS because not every mail client reads PSS.
func signatureAlgorithm(pub crypto.PublicKey) (x509.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return x509.ECDSAWithSHA256, nil
		case elliptic.P384():
			return x509.ECDSAWithSHA384, nil
		case elliptic.P521():
			return x509.ECDSAWithSHA512, nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() >= 2048 {
			return x509.SHA256WithRSA, nil
		}
	}
	return 0, fmt.Errorf("ca: unsupported CA key %T", pub)
}

// parseBaseURL checks that s is an absolute http URL without a query or
// fragment and returns it without a trailing slash. It must be plain HTTP:
// the S/MIME BR (7.1.2.3) require http for CRL distribution points and AIA,
// because a relying party cannot check revocation of the TLS certificate
// that would protect an https URL without first fetching it.
func parseBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme != "http" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("ca: PKI base URL %q must be an absolute http:// URL such as http://pki.example.com", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// NeedsInternalNameWaiver reports whether certificates with URLs under
// pkiBaseURL would draw zlint's w_smime_aia_contains_internal_names warning:
// true for localhost, IP addresses with a port, and names outside the public
// suffix list. Only a development CA should ever be in that position.
func NeedsInternalNameWaiver(pkiBaseURL string) bool {
	u, err := url.Parse(pkiBaseURL)
	if err != nil {
		return false
	}
	if net.ParseIP(u.Host) != nil {
		return false
	}
	return !util.HasValidTLD(u.Hostname(), time.Now())
}
