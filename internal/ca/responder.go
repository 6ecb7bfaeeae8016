package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"time"

	"github.com/mailca/mailca/internal/keys"
)

// ResponderProfile is the profile recorded for delegated OCSP responder
// certificates.
const ResponderProfile = "ocsp-responder"

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1): relying
// parties need not check the responder certificate's own status.
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// IssueOCSPResponder issues a delegated OCSP responder certificate (RFC
// 6960 4.2.2.2) for pub under the engine's issuer, valid for validity (at
// most the issuer's own remaining life): extended key usage OCSPSigning,
// digitalSignature, and id-pkix-ocsp-nocheck, which is why it must be
// short-lived. Like every certificate it is reserved, linted and stored;
// it is recorded under ResponderProfile with no mailbox.
func (e *Engine) IssueOCSPResponder(ctx context.Context, pub crypto.PublicKey, validity time.Duration) (*x509.Certificate, error) {
	// 1. The template.
	spki, err := keys.SPKIHash(pub)
	if err != nil {
		return nil, &RequestError{Reason: WeakKey, Detail: err.Error()}
	}
	subject, err := responderSubject(e.issuer)
	if err != nil {
		return nil, err
	}
	notBefore := e.now().UTC().Truncate(time.Second)
	notAfter := notBefore.Add(validity - time.Second)
	if notAfter.After(e.issuer.Cert.NotAfter) {
		notAfter = e.issuer.Cert.NotAfter
	}
	noCheck, _ := asn1.Marshal(asn1.NullRawValue)
	tmpl := &x509.Certificate{
		RawSubject:         subject,
		NotBefore:          notBefore,
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		SubjectKeyId:       spki[:20],
		ExtraExtensions:    []pkix.Extension{{Id: oidOCSPNoCheck, Value: noCheck}},
		SignatureAlgorithm: e.issuer.sigAlg,
	}

	// 2 and 3. Serial, lint certificate, reservation and lint, as for
	// every certificate.
	p, err := e.reserveAndLint(ctx, tmpl, pub, Reservation{IssuerID: e.issuer.ID, Profile: ResponderProfile, SPKIHash: spki})
	if err != nil {
		return nil, err
	}

	// 4 and 5. Sign exactly the linted bytes, and store.
	c, err := e.Sign(ctx, p)
	if err != nil {
		return nil, err
	}
	return c.Cert, nil
}

// responderSubject names a responder after its issuer: the issuer's
// country and organisation, and "<issuer CN> OCSP Responder" cut to 64
// characters.
func responderSubject(iss *Issuer) ([]byte, error) {
	var attrs []rdn
	for _, c := range iss.Cert.Subject.Country {
		attrs = append(attrs, rdn{oidCountry, asn1.TagPrintableString, c})
	}
	for _, o := range iss.Cert.Subject.Organization {
		attrs = append(attrs, rdn{oidOrganization, asn1.TagUTF8String, o})
	}
	cn := []rune(iss.Cert.Subject.CommonName + " OCSP Responder")
	if iss.Cert.Subject.CommonName == "" {
		cn = []rune("OCSP Responder " + iss.ID)
	}
	if len(cn) > ubCommonName {
		cn = cn[:ubCommonName]
	}
	attrs = append(attrs, rdn{oidCommonName, asn1.TagUTF8String, string(cn)})
	return marshalName(attrs)
}
