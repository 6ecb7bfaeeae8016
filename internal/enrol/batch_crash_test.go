package enrol_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
)

// failingStore fails the transaction numbered failAt (from 1) after its
// work is done, as a crash before the commit would: it rolls back.
type failingStore struct {
	*sqlite.DB
	failAt int32
	n      atomic.Int32
}

var errCrash = errors.New("crash before commit")

func (s *failingStore) InTx(ctx context.Context, fn func(enrol.Tx) error) error {
	n := s.n.Add(1)
	return s.DB.InTx(ctx, func(tx enrol.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if n == s.failAt {
			return errCrash
		}
		return nil
	})
}

// TestInviteCSVInterrupted stops imports of 1,200 rows (chunks of 500)
// after the first chunk in the ways a process stops, and checks that the
// stored report holds exactly the lines whose outcome committed.
func TestInviteCSVInterrupted(t *testing.T) {
	const rows, chunk = 1200, 500
	tests := []struct {
		name      string
		failAt    int32 // transaction to roll back: 1 is the batch, 2 the first chunk
		cancel    bool  // cancel ctx with ErrShutdown once the first chunk is reported
		reportErr bool  // the report callback fails after the first chunk
		wantError string
	}{
		{name: "second chunk rolls back", failAt: 3, wantError: "the import stopped with an internal error; the rows reported here were processed"},
		{name: "shutdown after the first chunk", cancel: true, wantError: enrol.ErrShutdown.Msg},
		{name: "the reader of the report dies", reportErr: true, wantError: "the import stopped with an internal error; the rows reported here were processed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := testkit.MustOpenDB(t)
			h := testkit.NewHierarchy(t, keys.ECDSAP256)
			fs := &failingStore{DB: db, failAt: -1}
			svc := enrol.NewService(enrol.Config{Store: fs, Issuer: testkit.NewEngine(t, h, db), PublicURL: "https://certs.example.com"})
			ctx := context.Background()
			if _, err := svc.SavePolicy(ctx, "test", enrol.DefaultPolicy()); err != nil {
				t.Fatal(err)
			}
			fs.n.Store(0)
			fs.failAt = tt.failAt
			ctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			reported := 0
			b, err := svc.InviteCSV(ctx, "cli", enrol.DefaultPolicy().Name, "gen.csv", &csvGenerator{n: rows}, func(r enrol.RowResult) error {
				reported++
				if reported == chunk {
					if tt.cancel {
						cancel(enrol.ErrShutdown)
					}
					if tt.reportErr {
						return errors.New("broken pipe")
					}
				}
				return nil
			})
			if err == nil || b == nil {
				t.Fatalf("InviteCSV = %+v, %v; want an interrupted batch", b, err)
			}
			if tt.cancel && !errors.Is(err, enrol.ErrShutdown) {
				t.Errorf("InviteCSV error = %v, want ErrShutdown", err)
			}
			got, err := db.Batch(context.Background(), b.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != "failed" || got.Rows != chunk || got.Invited != chunk || got.Error != tt.wantError {
				t.Errorf("batch = %+v, want failed after %d rows with error %q", got, chunk, tt.wantError)
			}
			var lines []int
			err = db.ScanBatchRows(context.Background(), b.ID, func(r store.BatchRow) error {
				if !r.Invited || r.EnrolmentID == 0 {
					t.Errorf("report line %+v, want invited", r)
				}
				lines = append(lines, r.Line)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != chunk || lines[0] != 2 || lines[chunk-1] != chunk+1 {
				t.Errorf("report has %d lines, want lines 2 to %d", len(lines), chunk+1)
			}
			es, err := db.Enrolments(context.Background(), enrol.Filter{BatchID: b.ID, Limit: 2000})
			if err != nil || len(es) != chunk {
				t.Errorf("batch has %d enrolments, %v; want %d", len(es), err, chunk)
			}
		})
	}
}

// TestFailStalledBatches: a batch whose import died is marked failed,
// with one audit event, by exactly one of two runners at once.
func TestFailStalledBatches(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	live := &enrol.Batch{Policy: "staff", Filename: "a.csv", Actor: "cli", State: "importing", CreatedAt: f.clock.now()}
	dead := &enrol.Batch{Policy: "staff", Filename: "b.csv", Actor: "cli", State: "importing", CreatedAt: f.clock.now()}
	for _, b := range []*enrol.Batch{dead, live} {
		if err := f.db.InTx(ctx, func(tx enrol.Tx) error { return tx.InsertBatch(b) }); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.advance(enrol.BatchStall + 1e9)
	// The live import commits a chunk.
	live.Rows, live.UpdatedAt = 500, f.clock.now()
	if err := f.db.InTx(ctx, func(tx enrol.Tx) error { return tx.UpdateBatch(live) }); err != nil {
		t.Fatal(err)
	}
	var total atomic.Int32
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			n, err := f.svc.FailStalledBatches(ctx)
			if err != nil {
				t.Error(err)
			}
			total.Add(int32(n))
		})
	}
	wg.Wait()
	if total.Load() != 1 {
		t.Errorf("two runners failed %d batches, want 1", total.Load())
	}
	got, _ := f.db.Batch(ctx, dead.ID)
	if got.State != "failed" || got.Error != enrol.StalledBatchError || !got.DoneAt.Equal(f.clock.now().Truncate(1e9)) {
		t.Errorf("dead batch = %+v, want failed now with %q", got, enrol.StalledBatchError)
	}
	if got, _ := f.db.Batch(ctx, live.ID); got.State != "importing" {
		t.Errorf("live batch = %+v, want importing", got)
	}
	evs, err := f.db.AuditFilter(ctx, sqlite.AuditQuery{Action: "batch.failed"})
	if err != nil || len(evs) != 1 || evs[0].Object != "batch:"+strconv.FormatInt(dead.ID, 10) || evs[0].Actor != "system" {
		t.Errorf("batch.failed events = %+v, %v; want one for batch %d", evs, err, dead.ID)
	}
}
