package outbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"slices"
	"time"
)

// DefaultSource returns the text of a default template file: name is one
// of Names and part is "subject", "txt" or "html". An editor of overrides
// starts from it.
func DefaultSource(name, part string) (string, error) {
	if !slices.Contains(names, name) || (part != "subject" && part != "txt" && part != "html") {
		return "", fmt.Errorf("outbox: no default template %s.%s", name, part)
	}
	b, err := fs.ReadFile(defaultFS, "templates/"+name+"."+part)
	return string(b), err
}

// SampleData returns made-up values for every key the enrolment process
// gives the named template, for previewing a template: a preview that
// renders with it renders with real messages. Nil for an unknown name.
func SampleData(name string) map[string]string {
	link := map[string]string{"Expires": "15 March 2026 09:00 UTC", "GivenName": "Alice", "Surname": "Liddell",
		"Mailbox": "alice@example.com", "Policy": "staff"}
	switch name {
	case "invitation", "verification":
		link["Link"] = "https://certs.example.com/e/sample-link"
		return link
	case "approved":
		link["Link"] = "https://certs.example.com/a/sample-link"
		return link
	case "application":
		return map[string]string{"Mailbox": "alice@example.com", "GivenName": "Alice", "Surname": "Liddell", "Policy": "staff", "ID": "42",
			"Review": "https://certs.example.com/console/enrolments/42"}
	case "rejected":
		return map[string]string{"Mailbox": "alice@example.com", "GivenName": "Alice", "Reason": "not a member of staff", "Policy": "staff"}
	case "issued":
		return map[string]string{"Mailbox": "alice@example.com", "GivenName": "Alice", "Serial": "7f3a9c01d2e4b5a6", "NotAfter": "14 March 2028",
			"CertificatePEM": sampleCertPEM(), "RevocationLink": "https://certs.example.com/revoke/sample-link"}
	case "revoked":
		return map[string]string{"Mailbox": "alice@example.com", "GivenName": "Alice", "Surname": "Liddell", "Serial": "7f3a9c01d2e4b5a6",
			"Reason": "its private key is known or suspected to have been compromised", "ReasonCode": "keyCompromise",
			"RevokedAt": "14 March 2027 10:30 UTC"}
	case "reminder":
		return map[string]string{"Mailbox": "alice@example.com", "GivenName": "Alice", "Surname": "Liddell", "Serial": "7f3a9c01d2e4b5a6",
			"NotAfter": "14 March 2028", "Days": "30",
			"RenewalLink": "https://certs.example.com/e/sample-renewal", "RenewalExpires": "28 February 2028 09:00 UTC"}
	case "digest":
		return map[string]string{"Count": "2", "Days": "30", "Date": "14 February 2028",
			"Certificates": "2028-03-01  bob@example.com  serial 1a2b3c4d5e6f7081\n2028-03-14  alice@example.com  serial 7f3a9c01d2e4b5a6\n"}
	}
	return nil
}

// sampleCertPEM returns a throwaway self-signed certificate, which the
// "issued" message attaches.
func sampleCertPEM() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ""
	}
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(0x7f3a9c01d2e4b5a6),
		Subject:        pkix.Name{CommonName: "Alice Liddell"},
		EmailAddresses: []string{"alice@example.com"},
		NotBefore:      time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC),
		NotAfter:       time.Date(2028, 3, 14, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
