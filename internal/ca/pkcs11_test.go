package ca_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
)

// TestPKCS11Issuer runs the issuing engine with its CA key in a SoftHSM2
// token: every profile is issued, linted clean and verified under the CA;
// a CRL and the OCSP responder certificate are signed by the token key;
// the readiness probe signs in the token.
func TestPKCS11Issuer(t *testing.T) {
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.ECDSAP384, keys.RSA3072} {
		t.Run(string(kt), func(t *testing.T) {
			h, _ := testkit.NewTokenHierarchy(t, kt)
			if _, ok := h.Issuer.Signer.(interface{ Delete() error }); !ok {
				t.Fatalf("issuer signer %T is not a PKCS#11 key", h.Issuer.Signer)
			}
			counter := &countingSigner{Signer: h.Issuer.Signer}
			h.Issuer.Signer = counter
			f := &pkiFixture{h: h, db: testkit.MustOpenDB(t)}
			f.engine = testkit.NewEngine(t, h, f.db)
			ctx := context.Background()
			linter, err := ca.NewLinter()
			if err != nil {
				t.Fatal(err)
			}

			for _, profile := range ca.ProfileNames() {
				req := ca.Request{Profile: profile, PublicKey: keys.MustGenerate(keys.ECDSAP256).Public(), Mailbox: mustMailbox(t, "Alice.Smith@Example.org")}
				if strings.HasPrefix(profile, "sponsor") {
					req.GivenName, req.Surname = "Alice", "Smith"
				}
				got, err := f.engine.Issue(ctx, req)
				if err != nil {
					t.Fatalf("%s: Issue: %v", profile, err)
				}
				if err := got.Cert.CheckSignatureFrom(h.Issuer.Cert); err != nil {
					t.Errorf("%s: signature does not verify under the issuing CA: %v", profile, err)
				}
				if err := linter.Check(got.Cert.Raw); err != nil {
					t.Errorf("%s: lint: %v", profile, err)
				}
				if _, err := got.Cert.Verify(x509.VerifyOptions{Roots: pool(h.Root), Intermediates: pool(h.Issuer.Cert), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
					t.Errorf("%s: chain: %v", profile, err)
				}
			}
			if n := counter.n; n != int64(len(ca.ProfileNames())) {
				t.Errorf("the token key signed %d times for %d certificates", n, len(ca.ProfileNames()))
			}

			revoked := f.issue(t, 0)
			f.revoke(t, revoked, ca.ReasonKeyCompromise, time.Now().Add(-time.Minute))
			p := newPublisher(t, h.Issuer, f.db, time.Hour, time.Now)
			c, err := p.Generate(ctx)
			if err != nil {
				t.Fatalf("CRL Generate: %v", err)
			}
			crl, err := x509.ParseRevocationList(c.DER)
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(h.Issuer.Cert); err != nil {
				t.Errorf("CRL signature: %v", err)
			}
			if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(revoked.SerialNumber) != 0 {
				t.Errorf("CRL entries = %v, want the one revoked certificate", crl.RevokedCertificateEntries)
			}
			if err := ca.CheckRevocationList(c.DER); err != nil {
				t.Errorf("CRL zlint: %v", err)
			}

			r := newResponder(t, f, true, time.Now)
			rc := r.ResponderCertificate()
			if rc == nil {
				t.Fatal("no delegated responder certificate")
			}
			if err := rc.CheckSignatureFrom(h.Issuer.Cert); err != nil {
				t.Errorf("responder certificate not signed by the token key: %v", err)
			}
			if err := linter.Check(rc.Raw); err != nil {
				t.Errorf("responder certificate lint: %v", err)
			}

			before := counter.n
			if err := h.Issuer.Probe(ctx); err != nil {
				t.Errorf("Probe: %v", err)
			}
			if counter.n != before+1 {
				t.Errorf("Probe signed %d times, want once", counter.n-before)
			}

			// The root's CRL, signed by the root key in the token.
			der, err := ca.NewRootCRL(h.Root, h.RootKey, nil, 1, time.Now())
			if err != nil {
				t.Fatalf("NewRootCRL: %v", err)
			}
			rcrl, err := x509.ParseRevocationList(der)
			if err != nil || rcrl.CheckSignatureFrom(h.Root) != nil {
				t.Errorf("root CRL does not verify under the root: %v", err)
			}
		})
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
