package ca

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
)

// newTestIssuer returns an issuing CA with a key of type t under a fresh
// root. (testkit cannot be used here: it imports this package.)
func newTestIssuer(t *testing.T, kt keys.Type) *Issuer {
	t.Helper()
	now := time.Now()
	rootKey := keys.MustGenerate(kt)
	root, err := NewRoot(rootKey, CAName{Organization: "Example", CommonName: "Root"}, now)
	if err != nil {
		t.Fatal(err)
	}
	key := keys.MustGenerate(kt)
	cert, err := NewIssuingCA(root, rootKey, key.Public(), CAName{Organization: "Example", CommonName: "Issuing CA"}, "http://pki.example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(cert, []*x509.Certificate{root}, key, "http://pki.example.com")
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// TestLintCertificateTBS checks what the engine relies on when it signs the
// linted TBS instead of encoding the template again: the TBS captured from
// x509.CreateCertificate is byte for byte the one CreateCertificate signs
// with the issuer's key, certificateDER wraps a TBS and signature exactly as
// CreateCertificate does, and the lint certificate does not verify under
// the real issuer.
func TestLintCertificateTBS(t *testing.T) {
	linter, err := NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			iss := newTestIssuer(t, kt)
			e, err := New(Config{Issuer: iss, Store: nopStore{}, Linter: linter})
			if err != nil {
				t.Fatal(err)
			}
			sub := keys.MustGenerate(keys.ECDSAP256)
			mb, err := mailbox.Parse("alice@example.org")
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := e.template(Request{PublicKey: sub.Public(), Mailbox: mb})
			if err != nil {
				t.Fatal(err)
			}
			if tmpl.SerialNumber, err = newSerial(rand.Reader); err != nil {
				t.Fatal(err)
			}

			lc, err := linter.lintCertificate(tmpl, iss.Cert, sub.Public())
			if err != nil {
				t.Fatalf("lintCertificate: %v", err)
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, iss.Cert, sub.Public(), iss.Signer)
			if err != nil {
				t.Fatal(err)
			}
			real, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(lc.tbs, real.RawTBSCertificate) {
				t.Errorf("captured TBS differs from the TBS CreateCertificate signs with the issuer's key")
			}
			if got, err := certificateDER(real.RawTBSCertificate, real.Signature); err != nil || !bytes.Equal(got, der) {
				t.Errorf("certificateDER(TBS, signature) = %x, %v; want CreateCertificate's %x", got, err, der)
			}

			lint, err := x509.ParseCertificate(lc.der)
			if err != nil {
				t.Fatalf("lint certificate does not parse: %v", err)
			}
			if !bytes.Equal(lint.RawTBSCertificate, lc.tbs) {
				t.Errorf("lint certificate's TBS differs from the captured one")
			}
			if err := lint.CheckSignatureFrom(iss.Cert); err == nil {
				t.Errorf("lint certificate verifies under the real issuer")
			}
		})
	}
}

type nopStore struct{}

func (nopStore) ReserveSerial(context.Context, Reservation) error       { return nil }
func (nopStore) RefuseSerial(context.Context, string, string) error     { return nil }
func (nopStore) StoreCertificate(context.Context, string, []byte) error { return nil }
