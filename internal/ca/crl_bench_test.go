package ca_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"math/big"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
)

// BenchmarkCRL measures Generate (number, read, encode, sign, check,
// store) of a full CRL with a million revoked entries under an ECDSA P-256
// issuing CA. The rows are inserted straight into SQLite by one INSERT ...
// SELECT before the timer starts, not issued. Besides time and bytes
// allocated per CRL it reports the size of the CRL.
//
//	go test -run '^$' -bench BenchmarkCRL -benchtime 3x ./internal/ca/
func BenchmarkCRL(b *testing.B) {
	for _, n := range []int{1000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			h := testkit.NewHierarchy(b, keys.ECDSAP256)
			db := openDBWithRevoked(b, h.Issuer.ID, n)
			p, err := ca.NewCRLPublisher(ca.CRLConfig{Issuer: h.Issuer, Store: db})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var c *ca.CRL
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if c, err = p.Generate(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// What was timed must be a CRL a relying party reads.
			crl, err := x509.ParseRevocationList(c.DER)
			if err == nil {
				err = crl.CheckSignatureFrom(h.Issuer.Cert)
			}
			if err != nil || c.Entries != n || len(crl.RevokedCertificateEntries) != n {
				b.Fatalf("CRL of %d entries, want %d: %v", c.Entries, n, err)
			}
			b.ReportMetric(float64(len(c.DER))/1e6, "crl-MB")
		})
	}
}

// openDBWithRevoked returns a database holding n issued, revoked
// certificates of the issuer, with the reasons in turn.
func openDBWithRevoked(tb testing.TB, issuerID string, n int) *sqlite.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "mailca.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	insertRevoked(tb, path, issuerID, n)
	return db
}

// insertRevoked adds n revoked certificates to the database at path with
// one INSERT ... SELECT over a recursive sequence: 159-bit serials,
// revoked over the past n seconds, expiring in a year. Serials, keys and
// mailboxes begin with the row number, so that every index is appended to
// in order: with random keys, SQLite spends half a minute in its B-trees.
func insertRevoked(tb testing.TB, path, issuerID string, n int) {
	tb.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-524288)")
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	now := time.Now().Unix()
	_, err = raw.Exec(`WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
		INSERT INTO certificates (serial, issuer_id, state, profile, mailbox, spki_sha256, not_before, not_after, lint_der, der,
			created_at, issued_at, revoked_at, revocation_reason, revocation_seq)
		SELECT printf('4%08x', i) || lower(hex(randomblob(15))), ?, 'issued', 'mailbox-strict', printf('user%08d@example.com', i),
			unhex(printf('%08x', i) || hex(randomblob(24))),
			?, ?, x'', x'', ?, ?, ? - i, CASE i % 6 WHEN 0 THEN 0 WHEN 1 THEN 1 WHEN 2 THEN 3 WHEN 3 THEN 4 WHEN 4 THEN 5 ELSE 9 END, i FROM seq`,
		n, issuerID, now-86400, now+365*86400, now-86400, now-86400, now)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = raw.Exec(`INSERT INTO issuer_counters (issuer_id, revocation_seq) VALUES (?, ?)
		ON CONFLICT (issuer_id) DO UPDATE SET revocation_seq = excluded.revocation_seq`, issuerID, n)
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkCreateRevocationList is the standard library's way, for
// comparison: x509.CreateRevocationList over entries already in memory
// (no database), with the same reasons.
//
//	go test -run '^$' -bench BenchmarkCreateRevocationList -benchtime 3x ./internal/ca/
func BenchmarkCreateRevocationList(b *testing.B) {
	const n = 1_000_000
	h := testkit.NewHierarchy(b, keys.ECDSAP256)
	reasons := []int{0, 1, 3, 4, 5, 9}
	entries := make([]x509.RevocationListEntry, n)
	now := time.Now().Truncate(time.Second)
	for i := range entries {
		serial := make([]byte, 20)
		rand.Read(serial)
		serial[0] &= 0x7f
		entries[i] = x509.RevocationListEntry{SerialNumber: new(big.Int).SetBytes(serial), RevocationTime: now.Add(-time.Duration(i) * time.Second), ReasonCode: reasons[i%6]}
	}
	tmpl := &x509.RevocationList{RevokedCertificateEntries: entries, Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(2 * time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x509.CreateRevocationList(rand.Reader, tmpl, h.Issuer.Cert, h.Issuer.Signer); err != nil {
			b.Fatal(err)
		}
	}
}
