package ca_test

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/testkit"
)

func mustMailbox(tb testing.TB, s string) mailbox.Address {
	tb.Helper()
	a, err := mailbox.Parse(s)
	if err != nil {
		tb.Fatalf("mailbox.Parse(%q): %v", s, err)
	}
	return a
}

// TestIssueProfiles issues one certificate per profile and key type and
// checks it against the linter directly: zero warnings or errors, and the
// S/MIME BR lints applied (a certificate they did not recognise would make
// them all "not applicable" and pass vacuously).
func TestIssueProfiles(t *testing.T) {
	caKeys := []keys.Type{keys.ECDSAP256, keys.ECDSAP384, keys.RSA2048, keys.RSA3072}
	subscriberKeys := []keys.Type{keys.ECDSAP256, keys.ECDSAP384, keys.RSA2048, keys.RSA3072}
	linter, err := ca.NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	for i, caKey := range caKeys {
		h := testkit.NewHierarchy(t, caKey)
		db := testkit.MustOpenDB(t)
		engine := testkit.NewEngine(t, h, db)
		for _, profile := range ca.ProfileNames() {
			// Every CA key type issues every profile; subscriber key types
			// rotate across CA key types so each pairing is covered once.
			subKey := subscriberKeys[(i+len(profile))%len(subscriberKeys)]
			t.Run(string(caKey)+"/"+profile+"/"+string(subKey), func(t *testing.T) {
				key := keys.MustGenerate(subKey)
				req := ca.Request{Profile: profile, PublicKey: key.Public(), Mailbox: mustMailbox(t, "Alice.Smith@Example.org")}
				if strings.HasPrefix(profile, "sponsor") {
					req.GivenName, req.Surname = "Alice", "Smith"
				}
				got, err := engine.Issue(context.Background(), req)
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				c := got.Cert
				findings, err := linter.Run(c.Raw)
				if err != nil {
					t.Fatal(err)
				}
				smimeApplied := 0
				for _, f := range findings {
					switch f.Status {
					case "warn", "error", "fatal":
						t.Errorf("lint %s = %s: %s", f.Lint, f.Status, f.Details)
					case "pass":
						if isSMIMELint(f.Lint) {
							smimeApplied++
						}
					}
				}
				if smimeApplied < 10 {
					t.Errorf("only %d S/MIME BR lints passed; the certificate is not being recognised as S/MIME", smimeApplied)
				}
				checkProfileShape(t, c, profile, key.Public())
				if err := c.CheckSignatureFrom(h.Issuer.Cert); err != nil {
					t.Errorf("signature does not verify under the issuing CA: %v", err)
				}
				rec, err := db.Certificate(context.Background(), ca.SerialHex(c.SerialNumber))
				if err != nil || rec.State != "issued" || !rec.Cert.Equal(c) {
					t.Errorf("stored record = %+v, %v; want the issued certificate", rec, err)
				}
			})
		}
	}
}

var smimeLintNames map[string]bool

func isSMIMELint(name string) bool {
	if smimeLintNames == nil {
		smimeLintNames = map[string]bool{}
		for _, l := range smimeLints() {
			smimeLintNames[l] = true
		}
	}
	return smimeLintNames[name]
}

func checkProfileShape(t *testing.T, c *x509.Certificate, profile string, pub any) {
	t.Helper()
	if got, want := c.EmailAddresses, []string{"Alice.Smith@example.org"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("SAN emails = %q, want %q", got, want)
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageEmailProtection {
		t.Errorf("EKU = %v, want emailProtection only", c.ExtKeyUsage)
	}
	p, _ := ca.ProfileByName(profile)
	if len(c.Policies) != 1 || !c.Policies[0].Equal(p.Policy) {
		t.Errorf("policies = %v, want %v", c.Policies, p.Policy)
	}
	wantKU := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	if _, rsa := pub.(interface{ Size() int }); rsa {
		wantKU = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	if c.KeyUsage != wantKU {
		t.Errorf("key usage = %b, want %b", c.KeyUsage, wantKU)
	}
	if d := c.NotAfter.Sub(c.NotBefore) + time.Second; d != ca.DefaultValidity {
		t.Errorf("validity = %v, want %v", d, ca.DefaultValidity)
	}
	if bits := c.SerialNumber.BitLen(); bits < 64 || bits > 159 {
		t.Errorf("serial has %d bits, want 64..159", bits)
	}
	if len(c.SubjectKeyId) == 0 || len(c.AuthorityKeyId) == 0 {
		t.Errorf("missing SKI or AKI")
	}
	if len(c.CRLDistributionPoints) != 1 || !strings.HasPrefix(c.CRLDistributionPoints[0], "http://") ||
		len(c.OCSPServer) != 1 || len(c.IssuingCertificateURL) != 1 {
		t.Errorf("CRL DP %v, OCSP %v, caIssuers %v: want one http URL each", c.CRLDistributionPoints, c.OCSPServer, c.IssuingCertificateURL)
	}
	hasGiven := len(c.Subject.Names) > 0 && hasAttr(c, asn1.ObjectIdentifier{2, 5, 4, 42})
	if strings.HasPrefix(profile, "sponsor") != hasGiven {
		t.Errorf("givenName present = %v in profile %s", hasGiven, profile)
	}
	if strings.HasPrefix(profile, "mailbox") == (len(c.Subject.Organization) > 0) {
		t.Errorf("organisation %q in profile %s", c.Subject.Organization, profile)
	}
}

func hasAttr(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oid) {
			return true
		}
	}
	return false
}

// TestLintFailureStopsSignature proves that a certificate the linter
// refuses is never signed by the real key: the issuer's signer is wrapped to
// count signatures, and a profile fault is forced by an over-long
// organisation name, which the RFC 5280 lints reject.
func TestLintFailureStopsSignature(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	counter := &countingSigner{Signer: h.Issuer.Signer}
	h.Issuer.Signer = counter
	db := testkit.MustOpenDB(t)
	engine, err := ca.New(ca.Config{Issuer: h.Issuer, Store: db, Organization: strings.Repeat("O", 65)})
	if err != nil {
		t.Fatal(err)
	}
	key := keys.MustGenerate(keys.ECDSAP256)
	_, err = engine.Issue(context.Background(), ca.Request{Profile: "organization-strict", PublicKey: key.Public(), Mailbox: mustMailbox(t, "a@example.org")})
	var lerr *ca.LintError
	if !errors.As(err, &lerr) {
		t.Fatalf("Issue = %v, want a *ca.LintError", err)
	}
	if !strings.Contains(lerr.Error(), "e_subject_organization_name_max_length") {
		t.Errorf("lint error %q does not name the failing lint", lerr)
	}
	if counter.n != 0 {
		t.Errorf("the issuer key signed %d times; want 0", counter.n)
	}
	counts, _ := db.CountCertificates(context.Background())
	if counts["refused"] != 1 || counts["issued"] != 0 {
		t.Errorf("certificate states = %v, want one refused", counts)
	}
	// The refused reservation does not burn the key.
	if _, err := engine.Issue(context.Background(), ca.Request{Profile: "mailbox-strict", PublicKey: key.Public(), Mailbox: mustMailbox(t, "a@example.org")}); err != nil {
		t.Errorf("Issue after a refusal with the same key: %v", err)
	}
}

func TestPreparedRedeemsOnce(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	engine := testkit.NewEngine(t, h, testkit.MustOpenDB(t))
	ctx := context.Background()
	p, err := engine.Prepare(ctx, ca.Request{PublicKey: keys.MustGenerate(keys.ECDSAP256).Public(), Mailbox: mustMailbox(t, "a@example.org")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Sign(ctx, p); err != nil {
		t.Fatalf("first Sign: %v", err)
	}
	if _, err := engine.Sign(ctx, p); !errors.Is(err, ca.ErrTokenRedeemed) {
		t.Fatalf("second Sign = %v, want ErrTokenRedeemed", err)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	db := testkit.MustOpenDB(t)
	engine := testkit.NewEngine(t, h, db)
	ctx := context.Background()
	used := keys.MustGenerate(keys.ECDSAP256)
	if _, err := engine.Issue(ctx, ca.Request{PublicKey: used.Public(), Mailbox: mustMailbox(t, "used@example.org")}); err != nil {
		t.Fatal(err)
	}
	fresh := func() any { return keys.MustGenerate(keys.ECDSAP256).Public() }
	tests := []struct {
		name string
		req  ca.Request
		want ca.Reason
	}{
		{"unknown profile", ca.Request{Profile: "extended-validation", PublicKey: fresh(), Mailbox: mustMailbox(t, "a@example.org")}, ca.UnknownProfile},
		{"reused key", ca.Request{PublicKey: used.Public(), Mailbox: mustMailbox(t, "other@example.org")}, ca.KeyReused},
		{"CA key", ca.Request{PublicKey: h.Issuer.Cert.PublicKey, Mailbox: mustMailbox(t, "a@example.org")}, ca.KeyReused},
		{"names in mailbox profile", ca.Request{PublicKey: fresh(), Mailbox: mustMailbox(t, "a@example.org"), GivenName: "Alice"}, ca.SubjectNotAllowed},
		{"control character in name", ca.Request{Profile: "sponsor-strict", PublicKey: fresh(), Mailbox: mustMailbox(t, "a@example.org"), GivenName: "Al\r\nice"}, ca.SubjectNotAllowed},
		{"validity too long", ca.Request{PublicKey: fresh(), Mailbox: mustMailbox(t, "a@example.org"), Validity: 826 * 24 * time.Hour}, ca.BadValidity},
		{"no mailbox", ca.Request{PublicKey: fresh()}, ca.BadMailbox},
		{"non-ASCII local part", ca.Request{PublicKey: fresh(), Mailbox: mustMailbox(t, "用户@example.org")}, ca.BadMailbox},
		{"no key", ca.Request{Mailbox: mustMailbox(t, "a@example.org")}, ca.WeakKey},
	}
	// The CA key is blocked the way mailca init blocks it.
	spki, _ := keys.SPKIHash(h.Issuer.Cert.PublicKey)
	if err := db.BlockKey(ctx, spki, "CA key"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.Issue(ctx, tt.req)
			var rerr *ca.RequestError
			if !errors.As(err, &rerr) || rerr.Reason != tt.want {
				t.Fatalf("Issue = %v, want reason %v", err, tt.want)
			}
		})
	}
	counts, _ := db.CountCertificates(ctx)
	if counts["issued"] != 1 || counts["reserved"] != 0 {
		t.Errorf("certificate states = %v, want only the first one issued", counts)
	}
}

func TestCALints(t *testing.T) {
	linter, err := ca.NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA3072} {
		h := testkit.NewHierarchy(t, kt)
		for _, c := range []*x509.Certificate{h.Root, h.Issuer.Cert} {
			if err := linter.Check(c.Raw); err != nil {
				t.Errorf("%s %s: %v", kt, c.Subject.CommonName, err)
			}
		}
	}
}
