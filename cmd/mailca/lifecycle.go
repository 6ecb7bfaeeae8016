package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/schedule"
)

// startLifecycle starts the goroutine, stopped by workCtx, that runs the
// certificate lifecycle jobs (expiry, reminders, digest). Each job is
// claimed with a lease in the database, so several servers sharing one
// database run each job once.
func startLifecycle(workCtx context.Context, wg *sync.WaitGroup, in *datadir.Instance, logger *slog.Logger) error {
	lc := in.Config.Lifecycle
	r, err := schedule.NewRunner(schedule.Config{
		Store:  in.DB,
		Logger: logger,
		Jobs: in.Enrol.LifecycleJobs(enrol.LifecycleConfig{
			ReminderDays: lc.ReminderDays, DigestTo: lc.DigestTo, Every: lc.Interval,
		}),
	})
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.Run(workCtx)
	}()
	return nil
}
