package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mailca/mailca/internal/keys"
)

// Lifetimes of the CA certificates made by NewRoot and NewIssuingCA. The
// issuing CA lives long enough to outlast every certificate it signs for
// years; the root outlives the issuing CA.
const (
	RootValidity    = 20 * 365 * 24 * time.Hour
	IssuingValidity = 10 * 365 * 24 * time.Hour
)

// CAName is the subject of a CA certificate.
type CAName struct {
	Organization string // required
	Country      string // optional ISO 3166 alpha-2 code
	CommonName   string // required
}

func (n CAName) der() ([]byte, error) {
	if n.Organization == "" || n.CommonName == "" {
		return nil, errors.New("ca: a CA name needs an organisation and a common name")
	}
	if !fitsLength(n.Organization, ubOrganization) || !fitsLength(n.CommonName, ubCommonName) {
		return nil, fmt.Errorf("ca: organisation and common name must be at most %d characters", ubCommonName)
	}
	var attrs []rdn
	if n.Country != "" {
		if !isCountryCode(n.Country) {
			return nil, fmt.Errorf("ca: country %q is not an ISO 3166 alpha-2 code such as DE or US", n.Country)
		}
		attrs = append(attrs, rdn{oidCountry, asn1.TagPrintableString, n.Country})
	}
	attrs = append(attrs,
		rdn{oidOrganization, asn1.TagUTF8String, n.Organization},
		rdn{oidCommonName, asn1.TagUTF8String, n.CommonName})
	return marshalName(attrs)
}

// caKeyID returns the subject key identifier for a CA key: SHA-256 of the
// SPKI, leftmost 160 bits (RFC 7093 method 4).
func caKeyID(pub crypto.PublicKey) ([]byte, error) {
	h, err := keys.SPKIHash(pub)
	if err != nil {
		return nil, err
	}
	return h[:20], nil
}

// NewRoot returns a self-signed root CA certificate for key (S/MIME BR
// 7.1.2.1): CA without path length, keyCertSign and cRLSign, no extended
// key usage and no policies.
func NewRoot(key crypto.Signer, name CAName, now time.Time) (*x509.Certificate, error) {
	subject, err := name.der()
	if err != nil {
		return nil, err
	}
	ski, err := caKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	sigAlg, err := signatureAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	serial, err := newSerial(rand.Reader)
	if err != nil {
		return nil, err
	}
	notBefore := now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(RootValidity - time.Second),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
		SignatureAlgorithm:    sigAlg,
	}
	return createAndParse(tmpl, tmpl, key.Public(), key)
}

// NewIssuingCA returns an S/MIME issuing CA certificate for pub signed by
// root (S/MIME BR 7.1.2.2): path length 0, keyCertSign and cRLSign,
// extended key usage emailProtection only, anyPolicy, and CRL distribution point and caIssuers under pkiBaseURL.
func NewIssuingCA(root *x509.Certificate, rootKey crypto.Signer, pub crypto.PublicKey, name CAName, pkiBaseURL string, now time.Time) (*x509.Certificate, error) {
	subject, err := name.der()
	if err != nil {
		return nil, err
	}
	base, err := parseBaseURL(pkiBaseURL)
	if err != nil {
		return nil, err
	}
	ski, err := caKeyID(pub)
	if err != nil {
		return nil, err
	}
	sigAlg, err := signatureAlgorithm(rootKey.Public())
	if err != nil {
		return nil, err
	}
	serial, err := newSerial(rand.Reader)
	if err != nil {
		return nil, err
	}
	// anyPolicy rather than the list of S/MIME policies: the BR (7.1.2.2)
	// allow it for a CA run by the root's own organisation, and linters read
	// a CA certificate carrying the mailbox-validated policy as if it were a
	// mailbox-validated subscriber certificate.
	anyPolicy, _ := x509.OIDFromInts([]uint64{2, 5, 29, 32, 0})
	policies := []x509.OID{anyPolicy}
	rootID := hex.EncodeToString(root.SubjectKeyId[:min(8, len(root.SubjectKeyId))])
	notBefore := now.UTC().Truncate(time.Second)
	notAfter := notBefore.Add(IssuingValidity - time.Second)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		SubjectKeyId:          ski,
		Policies:              policies,
		CRLDistributionPoints: []string{base + "/crl/" + rootID + ".crl"},
		IssuingCertificateURL: []string{base + "/ca/" + rootID + ".crt"},
		SignatureAlgorithm:    sigAlg,
	}
	return createAndParse(tmpl, root, pub, rootKey)
}

func createAndParse(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("ca: creating CA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// Fingerprint returns the SHA-256 fingerprint of a certificate in the
// colon-separated upper-case form administrators compare by eye.
func Fingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	const hexdigits = "0123456789ABCDEF"
	out := make([]byte, 0, len(h)*3)
	for i, b := range h {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hexdigits[b>>4], hexdigits[b&0xf])
	}
	return string(out)
}
