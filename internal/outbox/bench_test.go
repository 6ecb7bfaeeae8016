package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

// BenchmarkDeliver delivers 10,000 queued messages from SQLite to a
// loopback SMTP server and reports messages per second, the whole way:
// claim, render, compose, send, record.
func BenchmarkDeliver(b *testing.B) {
	const n = 10_000
	for _, bc := range []struct {
		name     string
		template string
		workers  int
		once     bool
	}{
		{"Run/invitation/workers=4", "invitation", 4, false},
		{"Run/issued/workers=4", "issued", 4, false},
		{"RunOnce/invitation/workers=4", "invitation", 4, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			mails := make([]enrol.Mail, n)
			for i, m := range invitations(n) {
				m.Template, m.Data = bc.template, testData(bc.template, m.To)
				mails[i] = m
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				db := mustOpenDB(b, "")
				sink := smtpsink.Start(b, smtpsink.WithDiscard())
				for j := 0; j < n; j += 1000 {
					enqueue(b, db, mails[j:j+1000]...)
				}
				w := newWorker(b, db, sink, nil, func(cfg *outbox.Config) {
					cfg.Workers = bc.workers
					cfg.Sender = newSender(b, sink, bc.workers)
				})
				b.StartTimer()

				ctx, cancel := context.WithCancel(context.Background())
				if bc.once {
					for sent := 0; sent < n; {
						k, err := w.RunOnce(ctx)
						if err != nil || k == 0 {
							b.Fatalf("RunOnce() = %d, %v after %d sent", k, err, sent)
						}
						sent += k
					}
				} else {
					done := make(chan error)
					go func() { done <- w.Run(ctx) }()
					sink.WaitFor(b, n, time.Minute)
					cancel()
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
				cancel()

				b.StopTimer()
				if got := mustCounts(b, db); got != "pending 0, sent 10000, failed 0" || sink.Count() != n {
					b.Fatalf("after the run: %s, %d received", got, sink.Count())
				}
				db.Close()
				sink.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
