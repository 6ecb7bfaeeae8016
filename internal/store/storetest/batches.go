package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

// testStalledBatches: FailStalledBatches fails the importing batches quiet
// since the cut-off, once, and an import that carries on after it finds
// its batch stale.
func testStalledBatches(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base.Add(10 * time.Minute)
	quietSince := now.Add(-enrol.BatchStall)
	tests := []struct {
		name   string
		b      enrol.Batch
		failed bool
	}{
		{"silent since it started", enrol.Batch{State: "importing", CreatedAt: base}, true},
		{"silent since its last chunk", enrol.Batch{State: "importing", CreatedAt: base, UpdatedAt: base.Add(time.Minute)}, true},
		{"committed a moment ago", enrol.Batch{State: "importing", CreatedAt: base, UpdatedAt: now.Add(-time.Minute)}, false},
		{"just started", enrol.Batch{State: "importing", CreatedAt: now.Add(-time.Minute)}, false},
		{"done long ago", enrol.Batch{State: "done", CreatedAt: base, UpdatedAt: base}, false},
	}
	var want []int64
	for i := range tests {
		b := &tests[i].b
		b.Policy, b.Filename, b.Actor = "p", "f.csv", "cli"
		final := *b
		b.State = "importing"
		inTx(t, s, func(tx enrol.Tx) error {
			if err := tx.InsertBatch(b); err != nil {
				return err
			}
			final.ID = b.ID
			if final.State == "importing" && final.UpdatedAt.IsZero() {
				return nil
			}
			return tx.UpdateBatch(&final)
		})
		*b = final
		if tests[i].failed {
			want = append(want, b.ID)
		}
	}
	var got []int64
	inTx(t, s, func(tx enrol.Tx) (err error) {
		got, err = tx.FailStalledBatches(quietSince, now, "interrupted")
		return err
	})
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("FailStalledBatches = %v, want %v", got, want)
	}
	for _, tt := range tests {
		b, err := s.Batch(ctx, tt.b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tt.failed {
			if b.State != "failed" || b.Error != "interrupted" || !b.DoneAt.Equal(now) {
				t.Errorf("%s: batch = %+v, want failed at %v", tt.name, b, now)
			}
		} else if b.State != tt.b.State || b.Error != "" {
			t.Errorf("%s: batch = %+v, want it untouched", tt.name, b)
		}
	}
	inTx(t, s, func(tx enrol.Tx) error {
		again, err := tx.FailStalledBatches(quietSince, now, "interrupted")
		if len(again) != 0 {
			t.Errorf("FailStalledBatches again = %v, want none", again)
		}
		return err
	})
	// The import of a failed batch, were it still alive, cannot bring it
	// back to importing.
	late := tests[0].b
	late.Rows, late.UpdatedAt = 500, now
	err := s.InTx(ctx, func(tx enrol.Tx) error { return tx.UpdateBatch(&late) })
	if !errors.Is(err, enrol.ErrStale) {
		t.Errorf("UpdateBatch of a failed batch = %v, want ErrStale", err)
	}
}

// testStalledBatchRace: two nodes failing stalled batches at once fail
// each batch exactly once.
func testStalledBatchRace(t *testing.T, s store.Store) {
	now := base.Add(time.Hour)
	var all []int64
	for range 20 {
		b := enrol.Batch{Policy: "p", Filename: "f.csv", Actor: "cli", State: "importing", CreatedAt: base}
		inTx(t, s, func(tx enrol.Tx) error { return tx.InsertBatch(&b) })
		all = append(all, b.ID)
	}
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			err := s.InTx(context.Background(), func(tx enrol.Tx) error {
				ids, err := tx.FailStalledBatches(now.Add(-enrol.BatchStall), now, "interrupted")
				mu.Lock()
				got = append(got, ids...)
				mu.Unlock()
				return err
			})
			if err != nil {
				t.Errorf("FailStalledBatches: %v", err)
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("two runners failed %v, want each of %v once", got, all)
	}
}
