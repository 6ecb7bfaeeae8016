// Package schedule runs periodic jobs, each claimed with a lease in the database so that several processes share them.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Store keeps the jobs' leases and run times.
type Store interface {
	// ClaimJob leases the named job to holder until now+lease when its
	// lease has run out and its next run is due, and reports whether it
	// did. A job never seen before is due at once.
	ClaimJob(ctx context.Context, name, holder string, now time.Time, lease time.Duration) (bool, error)
	// FinishJob releases holder's lease and sets the next run; ok records
	// now as the last successful run. A holder whose lease was taken over
	// changes nothing.
	FinishJob(ctx context.Context, name, holder string, now, next time.Time, ok bool) error
	// Jobs reports every job's state.
	Jobs(ctx context.Context) ([]JobState, error)
}

// JobState is a job's row in the store.
type JobState struct {
	Name       string
	Holder     string
	LeaseUntil time.Time
	LastRun    time.Time
	NextRun    time.Time
}

// Job is one periodic task.
type Job struct {
	Name string
	// Every is the time from the end of one successful run to the next.
	Every time.Duration
	// Lease bounds a run: a holder that has not finished by then is taken
	// for dead and the job is run again. Default 10 minutes.
	Lease time.Duration
	// Retry is the wait after a failed run; default a minute.
	Retry time.Duration
	Run   func(ctx context.Context) error
}

// Config configures a Runner.
type Config struct {
	Store  Store
	Jobs   []Job
	Now    func() time.Time // nil means time.Now
	Poll   time.Duration    // how often Run looks for due jobs; default a minute
	Logger *slog.Logger     // nil means slog.Default()
}

// Runner runs jobs when they are due and this process wins their lease.
type Runner struct {
	store  Store
	jobs   []Job
	now    func() time.Time
	poll   time.Duration
	logger *slog.Logger
}

// NewRunner returns a Runner for cfg; it checks that the jobs are named
// once each and have a positive interval.
func NewRunner(cfg Config) (*Runner, error) {
	r := &Runner{store: cfg.Store, jobs: cfg.Jobs, now: cfg.Now, poll: cfg.Poll, logger: cfg.Logger}
	if r.now == nil {
		r.now = time.Now
	}
	if r.poll <= 0 {
		r.poll = time.Minute
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	seen := map[string]bool{}
	for i := range r.jobs {
		j := &r.jobs[i]
		if j.Name == "" || seen[j.Name] || j.Every <= 0 || j.Run == nil {
			return nil, fmt.Errorf("schedule: job %d (%q) needs a unique name, a positive interval and a function", i, j.Name)
		}
		seen[j.Name] = true
		if j.Lease <= 0 {
			j.Lease = 10 * time.Minute
		}
		if j.Retry <= 0 {
			j.Retry = time.Minute
		}
	}
	return r, nil
}

// RunDue runs, one after the other, each job that is due and whose lease
// this call wins, and returns the names of those it ran. A job's failure
// is logged and returned, joined with the others; the job is tried again
// after its Retry.
func (r *Runner) RunDue(ctx context.Context) ([]string, error) {
	var ran []string
	var errs []error
	for _, j := range r.jobs {
		holder := newHolder()
		ok, err := r.store.ClaimJob(ctx, j.Name, holder, r.now(), j.Lease)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		ran = append(ran, j.Name)
		jctx, cancel := context.WithTimeout(ctx, j.Lease)
		start := time.Now()
		runErr := j.Run(jctx)
		cancel()
		now := r.now()
		next := now.Add(j.Every)
		if runErr != nil {
			next = now.Add(j.Retry)
			r.logger.Error("scheduled job failed", "job", j.Name, "err", runErr)
			errs = append(errs, fmt.Errorf("schedule: job %s: %w", j.Name, runErr))
		} else {
			r.logger.Debug("scheduled job done", "job", j.Name, "took", time.Since(start))
		}
		if err := r.store.FinishJob(context.WithoutCancel(ctx), j.Name, holder, now, next, runErr == nil); err != nil {
			errs = append(errs, err)
		}
	}
	return ran, errors.Join(errs...)
}

// Run calls RunDue at once and then every poll interval until ctx is
// done; it returns nil then.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for {
		if _, err := r.RunDue(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("scheduled jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// newHolder returns a random token identifying one claim.
func newHolder() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
