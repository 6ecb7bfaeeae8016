package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/ocsp"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
)

var (
	oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	oidMD5         = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
)

func newResponder(t *testing.T, f *pkiFixture, delegate bool, now func() time.Time) *ca.OCSPResponder {
	t.Helper()
	cfg := ca.OCSPConfig{Issuer: f.h.Issuer, Store: f.db, Now: now}
	if delegate {
		cfg.Delegate = f.engine
	}
	r, err := ca.NewOCSPResponder(cfg)
	if err != nil {
		t.Fatalf("NewOCSPResponder: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return r
}

// ocspRequest returns a DER request about serial under issuer, with CertID
// hash h.
func ocspRequest(t *testing.T, serial *big.Int, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, &ocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// ocspErrorStatus returns the status of an unsigned error response, or
// fails the test when der is anything else.
func ocspErrorStatus(t *testing.T, der []byte) ocsp.ResponseStatus {
	t.Helper()
	_, err := ocsp.ParseResponse(der, nil)
	var re ocsp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("response is not an OCSP error response: %v", err)
	}
	return re.Status
}

// lintOCSP runs zlint's OCSP response lints (RFC 6960 and CA/B Forum).
func lintOCSP(t *testing.T, resp *ocsp.Response) {
	t.Helper()
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: lint.SourceList{lint.RFC6960, lint.CABFBaselineRequirements}})
	if err != nil {
		t.Fatal(err)
	}
	rs := zlint.LintOcspResponseEx(resp, reg)
	ran := 0
	for name, r := range rs.Results {
		if r.Status == lint.Pass {
			ran++
		}
		if r.Status == lint.Warn || r.Status == lint.Error || r.Status == lint.Fatal {
			t.Errorf("zlint %s: %v %s", name, r.Status, r.Details)
		}
	}
	if ran == 0 {
		t.Errorf("no OCSP lint applied")
	}
}

// TestOCSPResponder asks a delegated responder about certificates in every
// state and checks each answer as a relying party would.
func TestOCSPResponder(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	ctx := context.Background()
	clock := newClock(time.Now())
	r := newResponder(t, f, true, clock.now)
	iss := f.h.Issuer.Cert

	// The responder certificate: issued by the CA, recorded, linted clean,
	// for OCSP signing only, with id-pkix-ocsp-nocheck.
	rc := r.ResponderCertificate()
	if rc == nil {
		t.Fatal("no delegated responder certificate")
	}
	if err := rc.CheckSignatureFrom(iss); err != nil {
		t.Errorf("responder certificate not signed by the issuing CA: %v", err)
	}
	if len(rc.ExtKeyUsage) != 1 || rc.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning || rc.KeyUsage != x509.KeyUsageDigitalSignature || rc.IsCA {
		t.Errorf("responder certificate: EKU %v, KU %v, CA %v; want OCSPSigning, digitalSignature, not a CA", rc.ExtKeyUsage, rc.KeyUsage, rc.IsCA)
	}
	noCheck := false
	for _, e := range rc.Extensions {
		noCheck = noCheck || e.Id.Equal(oidOCSPNoCheck)
	}
	if !noCheck {
		t.Errorf("responder certificate lacks id-pkix-ocsp-nocheck")
	}
	if d := rc.NotAfter.Sub(rc.NotBefore); d > ca.ResponderValidity {
		t.Errorf("responder certificate valid for %s, want at most %s", d, ca.ResponderValidity)
	}
	linter, err := ca.NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	if err := linter.Check(rc.Raw); err != nil {
		t.Errorf("responder certificate lint: %v", err)
	}
	applied := 0
	findings, _ := linter.Run(rc.Raw)
	for _, fd := range findings {
		if fd.Status == "pass" {
			applied++
		}
	}
	if applied < 10 {
		t.Errorf("only %d lints applied to the responder certificate", applied)
	}
	if rec, err := f.db.Certificate(ctx, ca.SerialHex(rc.SerialNumber)); err != nil || rec.State != "issued" || rec.Profile != ca.ResponderProfile {
		t.Errorf("responder certificate record = %+v, %v; want issued under %s", rec, err, ca.ResponderProfile)
	}

	good := f.issue(t, 0)
	revoked := f.issue(t, 0)
	revokedAt := clock.now().Add(-time.Minute).UTC().Truncate(time.Second)
	f.revoke(t, revoked, ca.ReasonKeyCompromise, revokedAt)
	unspecified := f.issue(t, 0)
	f.revoke(t, unspecified, ca.ReasonUnspecified, revokedAt)
	// A serial that was reserved and never signed, and one never seen.
	reserved, _ := new(big.Int).SetString("4d2c3b4a59687766554433221100ffeeddccbbaa", 16)
	if err := f.db.ReserveSerial(ctx, ca.Reservation{Serial: ca.SerialHex(reserved), IssuerID: f.h.Issuer.ID, Profile: ca.DefaultProfile, Mailbox: "x@example.com",
		SPKIHash: bytes.Repeat([]byte{7}, 32), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), LintDER: []byte{0}}); err != nil {
		t.Fatal(err)
	}
	never, _ := new(big.Int).SetString("1234567890abcdef1234567890abcdef", 16)

	tests := []struct {
		name   string
		serial *big.Int
		hash   crypto.Hash
		status int
		reason int
	}{
		{"good", good.SerialNumber, crypto.SHA1, ocsp.Good, 0},
		{"good sha256", good.SerialNumber, crypto.SHA256, ocsp.Good, 0},
		{"revoked", revoked.SerialNumber, crypto.SHA1, ocsp.Revoked, ocsp.KeyCompromise},
		{"revoked unspecified", unspecified.SerialNumber, crypto.SHA384, ocsp.Revoked, ocsp.Unspecified},
		{"reserved", reserved, crypto.SHA1, ocsp.Unknown, 0},
		{"never issued", never, crypto.SHA1, ocsp.Unknown, 0},
		{"zero", big.NewInt(0), crypto.SHA1, ocsp.Unknown, 0},
		{"negative", big.NewInt(-5), crypto.SHA1, ocsp.Unknown, 0},
		{"responder itself", rc.SerialNumber, crypto.SHA1, ocsp.Good, 0},
	}
	now := clock.now().UTC().Truncate(time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := r.Respond(ctx, ocspRequest(t, tt.serial, iss, tt.hash))
			got, err := ocsp.ParseResponseForCert(resp.DER, &x509.Certificate{SerialNumber: tt.serial}, iss)
			if err != nil {
				t.Fatalf("ParseResponseForCert: %v", err)
			}
			if got.Status != tt.status || resp.Status != tt.status {
				t.Errorf("status %d (reported %d), want %d", got.Status, resp.Status, tt.status)
			}
			if got.SerialNumber.Cmp(tt.serial) != 0 || got.IssuerHash != tt.hash {
				t.Errorf("answer about serial %x with hash %v, want %x, %v", got.SerialNumber, got.IssuerHash, tt.serial, tt.hash)
			}
			if tt.status == ocsp.Revoked && (got.RevocationReason != tt.reason || !got.RevokedAt.Equal(revokedAt)) {
				t.Errorf("revoked at %s for %d, want %s, %d", got.RevokedAt, got.RevocationReason, revokedAt, tt.reason)
			}
			if !got.ProducedAt.Equal(now) || !got.ThisUpdate.Equal(now) || !got.NextUpdate.Equal(now.Add(ca.DefaultOCSPValidity)) {
				t.Errorf("producedAt %s, thisUpdate %s, nextUpdate %s; want %s, %s and four days on", got.ProducedAt, got.ThisUpdate, got.NextUpdate, now, now)
			}
			if got.Certificate == nil || !got.Certificate.Equal(rc) {
				t.Errorf("response does not carry the responder certificate")
			}
			lintOCSP(t, got)
		})
	}

	// Responses are cached; "unknown" ones are not.
	cached := r.Cached()
	first := r.Respond(ctx, ocspRequest(t, good.SerialNumber, iss, crypto.SHA1))
	if again := r.Respond(ctx, ocspRequest(t, good.SerialNumber, iss, crypto.SHA1)); again != first {
		t.Errorf("a second request was signed again rather than served from the cache")
	}
	r.Respond(ctx, ocspRequest(t, never, iss, crypto.SHA1))
	if r.Cached() != cached {
		t.Errorf("cache grew from %d to %d on repeated and unknown requests", cached, r.Cached())
	}
	// Revoking does not change a cached answer until it is invalidated,
	// which the Publisher does within a second of the revocation.
	f.revoke(t, good, ca.ReasonSuperseded, clock.now())
	if got := r.Respond(ctx, ocspRequest(t, good.SerialNumber, iss, crypto.SHA1)); got.Status != ocsp.Good {
		t.Fatalf("cached answer changed before Invalidate")
	}
	r.Invalidate(ca.SerialHex(good.SerialNumber))
	if got := r.Respond(ctx, ocspRequest(t, good.SerialNumber, iss, crypto.SHA256)); got.Status != ocsp.Revoked {
		t.Errorf("after Invalidate: status %d, want revoked", got.Status)
	}
	// Half the validity on, a response is signed afresh.
	before := r.Respond(ctx, ocspRequest(t, revoked.SerialNumber, iss, crypto.SHA1))
	clock.advance(ca.DefaultOCSPValidity/2 + time.Second)
	after := r.Respond(ctx, ocspRequest(t, revoked.SerialNumber, iss, crypto.SHA1))
	if after == before || !after.ThisUpdate.After(before.ThisUpdate) {
		t.Errorf("response not signed again after half its validity: thisUpdate %s then %s", before.ThisUpdate, after.ThisUpdate)
	}
}

// TestOCSPBadRequests checks that nothing but a good request gets a signed
// answer.
func TestOCSPBadRequests(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	ctx := context.Background()
	r := newResponder(t, f, true, nil)
	cert := f.issue(t, 0)
	good := ocspRequest(t, cert.SerialNumber, f.h.Issuer.Cert, crypto.SHA1)
	other := testkit.NewHierarchy(t, keys.ECDSAP256)

	// A request whose CertID hash is MD5, which ParseRequest refuses.
	md5 := func() []byte {
		var req struct {
			TBS struct {
				List []struct {
					Cert struct {
						Alg                     struct{ Algorithm asn1.ObjectIdentifier }
						NameHash, IssuerKeyHash []byte
						Serial                  *big.Int
					}
				}
			}
		}
		req.TBS.List = make([]struct {
			Cert struct {
				Alg                     struct{ Algorithm asn1.ObjectIdentifier }
				NameHash, IssuerKeyHash []byte
				Serial                  *big.Int
			}
		}, 1)
		req.TBS.List[0].Cert.Alg.Algorithm = oidMD5
		req.TBS.List[0].Cert.NameHash, req.TBS.List[0].Cert.IssuerKeyHash = make([]byte, 16), make([]byte, 16)
		req.TBS.List[0].Cert.Serial = cert.SerialNumber
		b, err := asn1.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	garbage := make([]byte, 300)
	rand.Read(garbage)
	tests := []struct {
		name string
		req  []byte
		want ocsp.ResponseStatus
	}{
		{"empty", nil, ocsp.Malformed},
		{"garbage", garbage, ocsp.Malformed},
		{"truncated", good[:len(good)-1], ocsp.Malformed},
		{"trailing data", append(append([]byte{}, good...), 0), ocsp.Malformed},
		{"only a header", good[:2], ocsp.Malformed},
		{"md5 CertID", md5, ocsp.Malformed},
		{"other issuer", ocspRequest(t, cert.SerialNumber, other.Issuer.Cert, crypto.SHA1), ocsp.Unauthorized},
		{"the root", ocspRequest(t, f.h.Issuer.Cert.SerialNumber, f.h.Root, crypto.SHA1), ocsp.Unauthorized},
	}
	for _, tt := range tests {
		resp := r.Respond(ctx, tt.req)
		if got := ocspErrorStatus(t, resp.DER); got != tt.want || resp.Status != -1 {
			t.Errorf("%s: status %v (%d), want %v", tt.name, got, resp.Status, tt.want)
		}
	}

	// A store that fails: tryLater, never a guess.
	broken, err := ca.NewOCSPResponder(ca.OCSPConfig{Issuer: f.h.Issuer, Store: failingStore{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := broken.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ocspErrorStatus(t, broken.Respond(ctx, good).DER); got != ocsp.TryLater {
		t.Errorf("failing store: status %v, want tryLater", got)
	}
	// A responder that was never started answers tryLater too.
	idle, _ := ca.NewOCSPResponder(ca.OCSPConfig{Issuer: f.h.Issuer, Store: f.db})
	if got := ocspErrorStatus(t, idle.Respond(ctx, good).DER); got != ocsp.TryLater {
		t.Errorf("responder not started: status %v, want tryLater", got)
	}
}

type failingStore struct{}

func (failingStore) CertificateStatus(context.Context, string) (ca.CertificateStatus, error) {
	return ca.CertificateStatus{}, errors.New("disk on fire")
}

// TestOCSPSignedByCA checks the responder without a delegate: the CA signs
// and no certificate travels with the response.
func TestOCSPSignedByCA(t *testing.T) {
	for _, kt := range []keys.Type{keys.ECDSAP384, keys.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			f := newPKIFixture(t, kt)
			r := newResponder(t, f, false, nil)
			cert := f.issue(t, 0)
			resp := r.Respond(context.Background(), ocspRequest(t, cert.SerialNumber, f.h.Issuer.Cert, crypto.SHA1))
			got, err := ocsp.ParseResponseForCert(resp.DER, cert, f.h.Issuer.Cert)
			if err != nil {
				t.Fatalf("ParseResponseForCert: %v", err)
			}
			if got.Status != ocsp.Good || got.Certificate != nil || r.ResponderCertificate() != nil {
				t.Errorf("status %d, certificate %v; want good, signed by the CA itself", got.Status, got.Certificate != nil)
			}
			if err := got.CheckSignatureFrom(f.h.Issuer.Cert); err != nil {
				t.Errorf("signature: %v", err)
			}
			lintOCSP(t, got)
		})
	}
}

// TestOCSPResponderRenewal moves the clock through the responder
// certificate's life: no response outlives it, and Maintain replaces it
// in time.
func TestOCSPResponderRenewal(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	ctx := context.Background()
	clock := newClock(time.Now())
	r := newResponder(t, f, true, clock.now)
	first := r.ResponderCertificate()
	cert := f.issue(t, 0)
	clock.advance(20 * 24 * time.Hour)
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if r.ResponderCertificate() != first {
		t.Errorf("responder certificate renewed with ten days left")
	}
	clock.advance(3 * 24 * time.Hour) // seven days left: less than two validities
	resp := r.Respond(ctx, ocspRequest(t, cert.SerialNumber, f.h.Issuer.Cert, crypto.SHA1))
	got, err := ocsp.ParseResponseForCert(resp.DER, cert, f.h.Issuer.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if got.NextUpdate.After(first.NotAfter) {
		t.Errorf("response valid until %s, after its responder certificate (%s)", got.NextUpdate, first.NotAfter)
	}
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	second := r.ResponderCertificate()
	if second == first || second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("responder certificate not renewed with seven days left")
	}
	if second.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(first.PublicKey) {
		t.Errorf("renewed responder certificate has the old key")
	}
}
