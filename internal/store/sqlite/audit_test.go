package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// auditStart is the time of the first event written by openAuditDB; each
// later event is one minute later.
var auditStart = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// openAuditDB opens a new database holding the events evs, written one
// transaction each, a minute apart.
func openAuditDB(tb testing.TB, evs ...enrol.Event) *sqlite.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "mailca.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	now := auditStart
	db.SetClock(func() time.Time { return now })
	for _, e := range evs {
		if err := db.InTx(ctx, func(tx enrol.Tx) error { return tx.Audit(e) }); err != nil {
			tb.Fatalf("writing audit event: %v", err)
		}
		now = now.Add(time.Minute)
	}
	return db
}

var sampleEvents = []enrol.Event{
	{Actor: "cli", Action: "batch.start", Object: "batch:1", Detail: "policy default, file people.csv"},           // 1
	{Actor: "cli", Action: "enrolment.invite", Object: "enrolment:1", Detail: "policy default v1, a@example.com"}, // 2
	{Actor: "cli", Action: "enrolment.invite", Object: "enrolment:2", Detail: "policy default v1, b@example.com"}, // 3
	{Actor: "cli", Action: "enrolment.invite", Object: "enrolment:12", Detail: "policy default v1, c@example.com"},
	{Actor: "user:a@example.com", Action: "enrolment.submit", Object: "enrolment:1", Detail: "terms v1"}, // 5
	{Actor: "admin:ann@example.com", Action: "enrolment.approve", Object: "enrolment:1", Detail: "manual"},
	{Actor: "cli", Action: "batch.done", Object: "batch:1", Detail: "3 invited"}, // 7
	{Actor: "cli", Action: "odd", Object: "x%_y", Detail: ""},
	{Actor: "cli", Action: "odd", Object: "x\xff\xffz", Detail: "after a 0xFF octet"}, // 9
}

func TestAuditEventsStreamsTheChain(t *testing.T) {
	ctx := context.Background()
	db := openAuditDB(t, sampleEvents...)
	var v audit.Verifier
	var seqs []int64
	err := db.AuditEvents(ctx, func(r audit.Record) error {
		seqs = append(seqs, r.Seq)
		if want := auditStart.Add(time.Duration(r.Seq-1) * time.Minute); !r.At.Equal(want) {
			t.Errorf("event %d at %v, want %v", r.Seq, r.At, want)
		}
		e := sampleEvents[r.Seq-1]
		if r.Actor != e.Actor || r.Action != e.Action || r.Object != e.Object || r.Detail != e.Detail {
			t.Errorf("event %d = %+v, want %+v", r.Seq, r, e)
		}
		return v.Next(r)
	})
	if err != nil {
		t.Fatalf("AuditEvents: %v", err)
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(seqs, want) {
		t.Errorf("AuditEvents gave seqs %v, want %v", seqs, want)
	}
	if v.Count() != int64(len(sampleEvents)) {
		t.Errorf("verified %d events, want %d", v.Count(), len(sampleEvents))
	}

	// An error from fn stops the iteration and comes back unchanged.
	stop := errors.New("stop")
	n := 0
	err = db.AuditEvents(ctx, func(audit.Record) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("AuditEvents with a failing fn: %d calls, %v; want 3, %v", n, err, stop)
	}

	// An empty log is an empty chain.
	calls := 0
	if err := openAuditDB(t).AuditEvents(ctx, func(audit.Record) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("AuditEvents on an empty log: %d calls, %v", calls, err)
	}
}

// TestAuditEventsWhileWriting appends events from inside the iteration: the
// stream is one snapshot, so it neither deadlocks nor sees them.
func TestAuditEventsWhileWriting(t *testing.T) {
	ctx := context.Background()
	db := openAuditDB(t, sampleEvents[:3]...)
	n := 0
	err := db.AuditEvents(ctx, func(r audit.Record) error {
		n++
		return db.InTx(ctx, func(tx enrol.Tx) error {
			return tx.Audit(enrol.Event{Actor: "cli", Action: "test.write", Object: fmt.Sprint("during:", r.Seq)})
		})
	})
	if err != nil || n != 3 {
		t.Fatalf("AuditEvents while writing: %d events, %v; want 3, nil", n, err)
	}
	var v audit.Verifier
	if err := db.AuditEvents(ctx, v.Next); err != nil || v.Count() != 6 {
		t.Errorf("after writing: %d events verified, %v; want 6", v.Count(), err)
	}
}

// TestAuditFilterBytes: an object prefix ending in 0xFF octets, which
// only SQLite can store (PostgreSQL text is UTF-8), still has an upper
// bound. The filters themselves are tested on both dialects by
// internal/store/storetest.
func TestAuditFilterBytes(t *testing.T) {
	ctx := context.Background()
	db := openAuditDB(t, sampleEvents...)
	q := sqlite.AuditQuery{Object: "x\xff"}
	if got := seqsOf(mustAuditFilter(t, db, q)); !slices.Equal(got, []int64{9}) {
		t.Errorf("AuditFilter(%+v) = %v, want [9]", q, got)
	}
	var scanned []int64
	err := db.AuditScan(ctx, q, func(r audit.Record) error { scanned = append(scanned, r.Seq); return nil })
	if err != nil || !slices.Equal(scanned, []int64{9}) {
		t.Errorf("AuditScan(%+v) = %v, %v; want [9]", q, scanned, err)
	}
}

func mustAuditFilter(tb testing.TB, db *sqlite.DB, q sqlite.AuditQuery) []audit.Record {
	tb.Helper()
	rs, err := db.AuditFilter(context.Background(), q)
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

func seqsOf(rs []audit.Record) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}
