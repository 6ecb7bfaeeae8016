package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store/sqlite"
)

func openDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "mailca.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// storeCert records an issued certificate (or only a reservation, when
// issued is false) valid until notAfter.
func storeCert(t *testing.T, db *sqlite.DB, serial, issuer string, notAfter time.Time, issued bool) {
	t.Helper()
	ctx := context.Background()
	spki := bytes.Repeat([]byte(serial), 32)[:32]
	if err := db.ReserveSerial(ctx, ca.Reservation{Serial: serial, IssuerID: issuer, Profile: ca.DefaultProfile, Mailbox: serial + "@example.com",
		SPKIHash: spki, NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter, LintDER: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if issued {
		if err := db.StoreCertificate(ctx, serial, []byte{2}); err != nil {
			t.Fatal(err)
		}
	}
}

func revoke(t *testing.T, db *sqlite.DB, serial string, reason ca.RevocationReason, at time.Time) (*enrol.Revocation, bool, error) {
	t.Helper()
	var r *enrol.Revocation
	var revoked bool
	err := db.InTx(context.Background(), func(tx enrol.Tx) error {
		var err error
		r, revoked, err = tx.RevokeCertificate(serial, reason, at)
		return err
	})
	return r, revoked, err
}

func TestRevokeCertificate(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	later := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	storeCert(t, db, "a1", "issuerA", later, true)
	storeCert(t, db, "a2", "issuerA", later, false)
	at := time.Now().Truncate(time.Second)

	r, revoked, err := revoke(t, db, "a1", ca.ReasonKeyCompromise, at)
	if err != nil || !revoked || r.IssuerID != "issuerA" || r.Mailbox != "a1@example.com" || !r.NotAfter.Equal(later) || len(r.SPKIHash) != 32 {
		t.Fatalf("RevokeCertificate(a1) = %+v, %v, %v", r, revoked, err)
	}
	r, revoked, err = revoke(t, db, "a1", ca.ReasonSuperseded, at.Add(time.Hour))
	if err != nil || revoked || r.Reason != ca.ReasonKeyCompromise || !r.RevokedAt.Equal(at) {
		t.Errorf("second RevokeCertificate(a1) = %+v, %v, %v; want the first revocation, unchanged", r, revoked, err)
	}
	for _, serial := range []string{"a2", "nonesuch"} {
		if _, _, err := revoke(t, db, serial, ca.ReasonUnspecified, at); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("RevokeCertificate(%s) = %v, want ErrNotFound", serial, err)
		}
	}
	st, err := db.CertificateStatus(ctx, "a1")
	if err != nil || !st.Issued || st.IssuerID != "issuerA" || st.Reason != ca.ReasonKeyCompromise || !st.RevokedAt.Equal(at) || !st.NotAfter.Equal(later) {
		t.Errorf("CertificateStatus(a1) = %+v, %v", st, err)
	}
	if st, err := db.CertificateStatus(ctx, "a2"); err != nil || st.Issued || st.Revoked() {
		t.Errorf("CertificateStatus(reserved a2) = %+v, %v", st, err)
	}
	if _, err := db.CertificateStatus(ctx, "nonesuch"); !errors.Is(err, ca.ErrUnknownCertificate) {
		t.Errorf("CertificateStatus(nonesuch) = %v, want ErrUnknownCertificate", err)
	}
}

// TestRevocationFeed checks the sequence numbers, the feed, and what the
// CRL reads: per issuer, revoked only, not expired.
func TestRevocationFeed(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	for i := range 5 {
		storeCert(t, db, "a"+strconv.Itoa(i), "issuerA", now.Add(time.Duration(i)*time.Hour), true)
	}
	storeCert(t, db, "b0", "issuerB", now.Add(time.Hour), true)
	storeCert(t, db, "a9", "issuerA", now.Add(time.Hour), true) // never revoked
	// Revoke a3, a0, b0, a1, a4 in that order.
	for _, s := range []string{"a3", "a0", "b0", "a1", "a4"} {
		if _, _, err := revoke(t, db, s, ca.ReasonCessationOfOperation, now); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := db.RevocationSeq(ctx, "issuerA"); err != nil || seq != 4 {
		t.Errorf("RevocationSeq(A) = %d, %v; want 4", seq, err)
	}
	if seq, _ := db.RevocationSeq(ctx, "issuerB"); seq != 1 {
		t.Errorf("RevocationSeq(B) = %d, want 1", seq)
	}
	if seq, _ := db.RevocationSeq(ctx, "issuerC"); seq != 0 {
		t.Errorf("RevocationSeq(C) = %d, want 0", seq)
	}
	got, last, err := db.RevokedSince(ctx, "issuerA", 0, 3)
	if err != nil || !slices.Equal(got, []string{"a3", "a0", "a1"}) || last != 3 {
		t.Errorf("RevokedSince(A, 0, 3) = %v, %d, %v", got, last, err)
	}
	got, last, _ = db.RevokedSince(ctx, "issuerA", last, 3)
	if !slices.Equal(got, []string{"a4"}) || last != 4 {
		t.Errorf("RevokedSince(A, 3, 3) = %v, %d", got, last)
	}
	if got, last, _ = db.RevokedSince(ctx, "issuerA", 4, 3); len(got) != 0 || last != 4 {
		t.Errorf("RevokedSince(A, 4, 3) = %v, %d; want nothing, 4", got, last)
	}

	// The CRL at now+1h: a0 expired at now and drops off; a1 expires at
	// the very second and stays; b0 is another issuer's; a9 is not revoked.
	var listed []string
	seq, err := db.RevokedCertificates(ctx, "issuerA", now.Add(time.Hour), func(e *ca.RevokedEntry) error {
		if e.Reason != ca.ReasonCessationOfOperation || !e.RevokedAt.Equal(now) {
			t.Errorf("entry %s: %v at %s", e.Serial, e.Reason, e.RevokedAt)
		}
		listed = append(listed, string(e.Serial))
		return nil
	})
	slices.Sort(listed)
	if err != nil || seq != 4 || !slices.Equal(listed, []string{"a1", "a3", "a4"}) {
		t.Errorf("RevokedCertificates(A) = %v, seq %d, %v; want a1, a3, a4 at 4", listed, seq, err)
	}
	stop := errors.New("stop")
	if _, err := db.RevokedCertificates(ctx, "issuerA", now, func(*ca.RevokedEntry) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("RevokedCertificates did not return the callback's error: %v", err)
	}
}

func TestCRLStorage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mailca.db")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 3; want++ {
		if n, err := db.NextCRLNumber(ctx, "issuerA"); err != nil || n != want {
			t.Errorf("NextCRLNumber(A) = %d, %v; want %d", n, err, want)
		}
	}
	if n, _ := db.NextCRLNumber(ctx, "issuerB"); n != 1 {
		t.Errorf("NextCRLNumber(B) = %d, want 1: each issuer counts its own", n)
	}
	if _, err := db.LatestCRL(ctx, "issuerA", true); !errors.Is(err, ca.ErrNoCRL) {
		t.Errorf("LatestCRL before any = %v, want ErrNoCRL", err)
	}
	now := time.Now().Truncate(time.Second)
	save := func(n int64) {
		t.Helper()
		if err := db.SaveCRL(ctx, &ca.CRL{IssuerID: "issuerA", Number: n, ThisUpdate: now, NextUpdate: now.Add(time.Hour), RevocationSeq: n * 10, Entries: int(n), DER: []byte{byte(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	save(2)
	save(1) // an older CRL, stored late by a slower process: ignored
	c, err := db.LatestCRL(ctx, "issuerA", true)
	if err != nil || c.Number != 2 || !bytes.Equal(c.DER, []byte{2}) || c.RevocationSeq != 20 || c.Entries != 2 || !c.ThisUpdate.Equal(now) || !c.NextUpdate.Equal(now.Add(time.Hour)) {
		t.Errorf("LatestCRL = %+v, %v; want number 2", c, err)
	}
	if c, _ := db.LatestCRL(ctx, "issuerA", false); c.Number != 2 || c.DER != nil {
		t.Errorf("LatestCRL without DER = %+v", c)
	}
	db.Close()
	// The counter survives a restart.
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, _ := db.NextCRLNumber(ctx, "issuerA"); n != 4 {
		t.Errorf("NextCRLNumber(A) after reopening = %d, want 4", n)
	}
}
