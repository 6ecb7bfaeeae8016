package schedule_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/schedule"
	"github.com/mailca/mailca/internal/testkit"
)

type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func newRunner(t *testing.T, store schedule.Store, c *clock, jobs ...schedule.Job) *schedule.Runner {
	t.Helper()
	r, err := schedule.NewRunner(schedule.Config{Store: store, Jobs: jobs, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunDue runs a job when due, not before, and once among concurrent
// runners.
func TestRunDue(t *testing.T) {
	db := testkit.MustOpenDB(t)
	c := &clock{}
	c.t.Store(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	var runs atomic.Int32
	job := schedule.Job{Name: "count", Every: time.Hour, Run: func(context.Context) error { runs.Add(1); return nil }}
	rs := []*schedule.Runner{newRunner(t, db, c, job), newRunner(t, db, c, job), newRunner(t, db, c, job)}
	runAll := func() {
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Go(func() {
				if _, err := r.RunDue(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	for _, step := range []struct {
		advance time.Duration
		want    int32
	}{{0, 1}, {0, 1}, {59 * time.Minute, 1}, {time.Minute, 2}, {30 * time.Minute, 2}, {31 * time.Minute, 3}} {
		c.advance(step.advance)
		runAll()
		if got := runs.Load(); got != step.want {
			t.Fatalf("after +%v: %d runs, want %d", step.advance, got, step.want)
		}
	}
}

// TestLeaseExpired: a runner that claimed a job and died leaves the lease
// to run out; then the job runs again, and the dead holder's late finish
// changes nothing.
func TestLeaseExpired(t *testing.T) {
	ctx := context.Background()
	db := testkit.MustOpenDB(t)
	c := &clock{}
	c.t.Store(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	ok, err := db.ClaimJob(ctx, "expire", "dead-node", c.now(), 10*time.Minute)
	if err != nil || !ok {
		t.Fatalf("ClaimJob() = %v, %v; want the lease", ok, err)
	}
	var runs atomic.Int32
	r := newRunner(t, db, c, schedule.Job{Name: "expire", Every: time.Hour, Lease: 10 * time.Minute, Run: func(context.Context) error { runs.Add(1); return nil }})
	c.advance(5 * time.Minute)
	if ran, err := r.RunDue(ctx); err != nil || len(ran) != 0 {
		t.Fatalf("RunDue() during the dead holder's lease = %v, %v; want nothing run", ran, err)
	}
	c.advance(6 * time.Minute)
	if ran, err := r.RunDue(ctx); err != nil || len(ran) != 1 {
		t.Fatalf("RunDue() after the lease = %v, %v; want the job run", ran, err)
	}
	// The dead holder wakes up and finishes: its lease is gone, so the
	// next run stays an hour away.
	if err := db.FinishJob(ctx, "expire", "dead-node", c.now(), c.now(), true); err != nil {
		t.Fatal(err)
	}
	if ran, _ := r.RunDue(ctx); len(ran) != 0 {
		t.Errorf("RunDue() after a stale finish ran %v", ran)
	}
	if runs.Load() != 1 {
		t.Errorf("%d runs, want 1", runs.Load())
	}
}

// TestFailedJobRetried retries a failing job after its Retry, not its
// interval.
func TestFailedJobRetried(t *testing.T) {
	ctx := context.Background()
	db := testkit.MustOpenDB(t)
	c := &clock{}
	c.t.Store(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	var runs atomic.Int32
	r := newRunner(t, db, c, schedule.Job{Name: "flaky", Every: 24 * time.Hour, Retry: time.Minute, Run: func(context.Context) error {
		if runs.Add(1) == 1 {
			return errors.New("flaky: first run fails")
		}
		return nil
	}})
	if _, err := r.RunDue(ctx); err == nil {
		t.Fatal("RunDue() of a failing job returned no error")
	}
	c.advance(time.Minute)
	if _, err := r.RunDue(ctx); err != nil || runs.Load() != 2 {
		t.Fatalf("RunDue() a minute after failing: %v, %d runs; want the retry", err, runs.Load())
	}
	jobs, err := db.Jobs(ctx)
	if err != nil || len(jobs) != 1 || !jobs[0].LastRun.Equal(c.now().Truncate(time.Second)) || !jobs[0].NextRun.Equal(c.now().Add(24*time.Hour).Truncate(time.Second)) {
		t.Errorf("Jobs() = %+v, %v; want last run now and next in a day", jobs, err)
	}
}

func TestNewRunnerRefuses(t *testing.T) {
	run := func(context.Context) error { return nil }
	for name, jobs := range map[string][]schedule.Job{
		"no name":     {{Every: time.Hour, Run: run}},
		"twice":       {{Name: "a", Every: time.Hour, Run: run}, {Name: "a", Every: time.Hour, Run: run}},
		"no interval": {{Name: "a", Run: run}},
		"no function": {{Name: "a", Every: time.Hour}},
	} {
		if _, err := schedule.NewRunner(schedule.Config{Jobs: jobs}); err == nil {
			t.Errorf("NewRunner(%s) = nil error", name)
		}
	}
}
