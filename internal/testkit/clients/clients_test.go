package clients_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"runtime"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	mailcap12 "github.com/mailca/mailca/internal/p12"
	"github.com/mailca/mailca/internal/testkit/clients"
)

// hierarchy is a throwaway root, issuing CA and subscriber.
type hierarchy struct {
	id   clients.Identity
	leaf *x509.Certificate
}

// keyKind names the subscriber's key type.
type keyKind string

const (
	ecP256  keyKind = "ecdsa-p256"
	ecP384  keyKind = "ecdsa-p384"
	rsa2048 keyKind = "rsa-2048"
)

func newKey(tb testing.TB, kind keyKind) crypto.Signer {
	tb.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case ecP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ecP384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case rsa2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("newKey(%q): unknown kind", kind)
	}
	if err != nil {
		tb.Fatalf("newKey(%q): %v", kind, err)
	}
	return k
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func sign(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		tb.Fatalf("CreateCertificate(%s): %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// newHierarchy builds a root, an issuing CA limited to emailProtection and a
// subscriber certificate for email whose key is of the given kind.
func newHierarchy(tb testing.TB, kind keyKind, email string) hierarchy {
	tb.Helper()
	now := time.Now().Add(-time.Hour)
	rootKey := newKey(tb, ecP256)
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "Test Root " + string(kind), Organization: []string{"mailca test"}},
		NotBefore:             now,
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	root := sign(tb, rootTmpl, rootTmpl, rootKey.Public(), rootKey)

	caKey := newKey(tb, ecP256)
	ca := sign(tb, &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "Test Issuing CA " + string(kind), Organization: []string{"mailca test"}},
		NotBefore:             now,
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, root, caKey.Public(), rootKey)

	leafKey := newKey(tb, kind)
	ku := x509.KeyUsageDigitalSignature
	if kind == rsa2048 {
		ku |= x509.KeyUsageKeyEncipherment
	} else {
		ku |= x509.KeyUsageKeyAgreement
	}
	leaf := sign(tb, &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: email},
		NotBefore:             now,
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		EmailAddresses:        []string{email},
		BasicConstraintsValid: true,
	}, ca, leafKey.Public(), caKey)

	const password = "correct horse"
	// mailca's own encoder, in the format it issues by default: it draws
	// the salts every client can read (see internal/p12).
	p12, err := mailcap12.Encode(rand.Reader, leafKey, leaf, []*x509.Certificate{ca}, email, password, mailcap12.Legacy)
	if err != nil {
		tb.Fatalf("p12.Encode: %v", err)
	}
	return hierarchy{
		id: clients.Identity{
			Email:    email,
			P12:      p12,
			Password: password,
			Root:     root,
			Chain:    []*x509.Certificate{ca},
		},
		leaf: leaf,
	}
}

// kinds are the subscriber keys every client is tried with. P-384 is there
// for gpgsm, which wants a digest as long as the curve.
var kinds = []keyKind{ecP256, ecP384, rsa2048}

func TestOpenSSL(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			h := newHierarchy(t, kind, "alice@example.test")
			clients.OpenSSLSignVerify(t, h.id)
			clients.OpenSSLEncryptDecrypt(t, h.id)
		})
	}
}

func TestGpgsm(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			h := newHierarchy(t, kind, "alice@example.test")
			clients.GpgsmSignVerify(t, h.id)
		})
	}
}

func TestNSS(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			h := newHierarchy(t, kind, "alice@example.test")
			clients.NSSSignVerify(t, h.id)
		})
	}
}

func TestGoVerify(t *testing.T) {
	for _, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			h := newHierarchy(t, kind, "alice@example.test")
			clients.GoVerify(t, h.leaf, h.id)
		})
	}
}

// check is one client check in its error-returning form.
type check struct {
	name  string
	tools []string
	run   func(ctx context.Context, dir string, h hierarchy) error
}

var checks = []check{
	{"OpenSSLSignVerify", []string{"openssl"}, func(ctx context.Context, dir string, h hierarchy) error {
		return clients.CheckOpenSSLSignVerify(ctx, dir, h.id)
	}},
	{"OpenSSLEncryptDecrypt", []string{"openssl"}, func(ctx context.Context, dir string, h hierarchy) error {
		return clients.CheckOpenSSLEncryptDecrypt(ctx, dir, h.id)
	}},
	{"GpgsmSignVerify", []string{"gpgsm", "gpgconf", "gpg-agent", "openssl"}, func(ctx context.Context, dir string, h hierarchy) error {
		return clients.CheckGpgsmSignVerify(ctx, dir, h.id)
	}},
	{"NSSSignVerify", []string{"certutil", "pk12util", "cmsutil"}, func(ctx context.Context, dir string, h hierarchy) error {
		return clients.CheckNSSSignVerify(ctx, dir, h.id)
	}},
	{"GoVerify", nil, func(_ context.Context, _ string, h hierarchy) error {
		return clients.CheckGoVerify(h.leaf, h.id)
	}},
}

// TestChecksReject proves every check can fail: each is given an identity
// a correct client must refuse.
func TestChecksReject(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(tb testing.TB, h *hierarchy)
		skip   map[string]bool // checks the mutation does not concern
		kinds  []keyKind       // nil for ECDSA P-256 and RSA
	}{
		{
			// The relying party trusts a root that did not issue the chain.
			name: "other root",
			mutate: func(tb testing.TB, h *hierarchy) {
				h.id.Root = newHierarchy(tb, ecP256, "mallory@example.test").id.Root
			},
			skip: map[string]bool{"OpenSSLEncryptDecrypt": true},
		},
		{
			// The PKCS#12 holds a key that is not the certificate's.
			name: "other key",
			mutate: func(tb testing.TB, h *hierarchy) {
				p12, err := pkcs12.LegacyDES.Encode(newKey(tb, rsa2048), h.leaf, h.id.Chain, h.id.Password)
				if err != nil {
					tb.Fatal(err)
				}
				h.id.P12 = p12
			},
			skip: map[string]bool{"GoVerify": true},
		},
		{
			// The certificate names another mailbox than the identity.
			name: "other email",
			mutate: func(tb testing.TB, h *hierarchy) {
				h.id.Email = "bob@example.test"
			},
			skip: map[string]bool{"OpenSSLSignVerify": true, "OpenSSLEncryptDecrypt": true, "NSSSignVerify": true},
		},
		{
			// gpgsm 2.2 derives PKCS#12 keys from at most 31 bytes of
			// password. Only an RSA key reaches its PKCS#12 import.
			name: "32-byte password",
			mutate: func(tb testing.TB, h *hierarchy) {
				key, leaf, chain, err := pkcs12.DecodeChain(h.id.P12, h.id.Password)
				if err != nil {
					tb.Fatal(err)
				}
				h.id.Password = "0123456789abcdef0123456789abcdef"
				if h.id.P12, err = pkcs12.LegacyDES.Encode(key, leaf, chain, h.id.Password); err != nil {
					tb.Fatal(err)
				}
			},
			skip:  map[string]bool{"OpenSSLSignVerify": true, "OpenSSLEncryptDecrypt": true, "NSSSignVerify": true, "GoVerify": true},
			kinds: []keyKind{rsa2048},
		},
	}
	for _, tt := range tests {
		kinds := tt.kinds
		if kinds == nil {
			kinds = []keyKind{ecP256, rsa2048}
		}
		for _, c := range checks {
			for _, kind := range kinds {
				if tt.skip[c.name] {
					continue
				}
				t.Run(tt.name+"/"+c.name+"/"+string(kind), func(t *testing.T) {
					t.Parallel()
					for _, tool := range c.tools {
						clients.RequireTool(t, tool)
					}
					h := newHierarchy(t, kind, "alice@example.test")
					tt.mutate(t, &h)
					err := c.run(t.Context(), t.TempDir(), h)
					if err == nil {
						t.Fatalf("Check%s(%s, %s) = nil, want an error", c.name, tt.name, kind)
					}
					var ce *clients.CommandError
					if c.name != "GoVerify" && !errors.As(err, &ce) {
						t.Errorf("Check%s(%s, %s) = %T, want *clients.CommandError", c.name, tt.name, kind, err)
					}
					t.Logf("Check%s(%s, %s) failed as it should:\n%v", c.name, tt.name, kind, err)
				})
			}
		}
	}
}

func TestGoVerifyReason(t *testing.T) {
	h := newHierarchy(t, ecP256, "alice@example.test")
	h.id.Root = newHierarchy(t, ecP256, "mallory@example.test").id.Root
	err := clients.CheckGoVerify(h.leaf, h.id)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("CheckGoVerify(other root) = %v, want x509.UnknownAuthorityError", err)
	}
}

// recordingTB stands in for a test so that RequireTool's fatal branch can
// be observed without failing this test.
type recordingTB struct {
	testing.TB
	fatal, skip bool
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(string, ...any) { r.fatal = true; runtime.Goexit() }

func (r *recordingTB) Skipf(string, ...any) { r.skip = true; runtime.Goexit() }

func TestRequireTool(t *testing.T) {
	const missing = "mailca-no-such-client"
	tests := []struct {
		ci          string
		fatal, skip bool
	}{
		{ci: "", skip: true},
		{ci: "false", skip: true},
		{ci: "true", fatal: true},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				clients.RequireTool(r, missing)
			}()
			<-done
			if r.fatal != tt.fatal || r.skip != tt.skip {
				t.Errorf("RequireTool(%q) with CI=%q: fatal %v, skip %v; want fatal %v, skip %v",
					missing, tt.ci, r.fatal, r.skip, tt.fatal, tt.skip)
			}
		})
	}
	t.Run("present", func(t *testing.T) {
		if got := clients.RequireTool(t, "go"); got == "" {
			t.Errorf("RequireTool(go) = %q, want its path", got)
		}
	})
}
