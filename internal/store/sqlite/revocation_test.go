package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// The revocation contract (RevokeCertificate, the feed, what a CRL reads)
// is tested on both dialects by internal/store/storetest; what stays here
// is SQLite's own: the CRL counter survives closing the file.

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
