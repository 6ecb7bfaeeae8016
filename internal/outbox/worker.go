package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailca/mailca/internal/mail"
)

// Sender delivers one composed message; *mail.Sender is one. Its errors
// are classified with mail.IsPermanent.
type Sender interface {
	Send(ctx context.Context, from string, to []string, msg []byte) error
}

// Config configures a Worker. Store, Templates, Sender and From.Addr are
// required; the zero values of the rest are usable defaults.
type Config struct {
	Store     Store
	Templates *Templates
	Sender    Sender
	// From is the From header and, its Addr, the envelope sender. Its Name
	// is also given to the templates as Sender.
	From   mail.Address
	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()

	Batch        int                             // messages claimed at a time; default 50
	Lease        time.Duration                   // how long a claim keeps other workers off; default 2m
	Workers      int                             // messages sent at once; default 4; match the Sender's connections
	MaxAttempts  int                             // attempts before a temporary failure becomes permanent; default 10
	Backoff      func(attempt int) time.Duration // wait after the attempt-th failure (from 1); default DefaultBackoff
	PollInterval time.Duration                   // how often Run looks for due messages; default 1s
	Observer     Observer                        // counts delivery outcomes; default none
}

// DefaultBackoff waits 30s·2^(attempt-1), at most 6 hours, less up to a
// quarter at random so that messages that failed together spread out.
func DefaultBackoff(attempt int) time.Duration {
	const base, ceiling = 30 * time.Second, 6 * time.Hour
	d := ceiling
	if n := attempt - 1; n < 0 {
		d = base
	} else if n < 20 {
		d = min(base<<n, ceiling)
	}
	return d - rand.N(d/4+1)
}

// Worker delivers the outbox: it claims due messages, renders, composes
// and sends them, and records the outcome.
type Worker struct {
	cfg  Config
	wake chan struct{}

	mu       sync.Mutex
	paused   time.Time // real time until which no send starts
	troubles int       // server failures since the last success
}

// NewWorker returns a worker for cfg, with defaults filled in. It does not
// start it: call Run.
func NewWorker(cfg Config) *Worker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	return &Worker{cfg: cfg, wake: make(chan struct{}, 1)}
}

func (w *Worker) check() error {
	switch {
	case w.cfg.Store == nil:
		return errors.New("outbox: no store")
	case w.cfg.Templates == nil:
		return errors.New("outbox: no templates")
	case w.cfg.Sender == nil:
		return errors.New("outbox: no sender")
	case w.cfg.From.Addr == "":
		return errors.New("outbox: no from address")
	}
	return nil
}

// Wake makes Run look for due messages now rather than at its next poll,
// so that a message just enqueued goes out at once. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// job is a claimed message and the real time at which its lease ends.
type job struct {
	m     Message
	until time.Time
}

// Run delivers messages until ctx is done. It claims the next batch while
// the last messages of the previous one are still being sent, and waits
// for the poll interval or Wake only when a claim comes back short.
//
// When the server itself fails (it cannot be reached, TLS or
// authentication fails) the worker pauses, for the poll interval doubling
// up to a minute, and the messages it had claimed wait for their leases to
// end; such failures are recorded but never make a message fail.
//
// When ctx is done Run stops taking messages, lets the sends in progress
// finish and be recorded, and returns nil. Messages it had claimed but not
// started stay leased and go out, here or on another worker, when the
// lease ends. Run returns an error only for an incomplete Config.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.check(); err != nil {
		return err
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range w.cfg.Workers {
		wg.Go(func() {
			for j := range jobs {
				w.deliver(ctx, j)
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if d := w.pauseLeft(); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		msgs, until, err := w.claim(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			w.cfg.Logger.Error("outbox: claim failed", "err", err)
		}
		for _, m := range msgs {
			select {
			case jobs <- job{m, until}:
			case <-ctx.Done():
				return nil
			}
		}
		if err == nil && len(msgs) == w.cfg.Batch {
			continue
		}
		// Since Go 1.23 Reset drops a tick that came after the last receive.
		timer.Reset(w.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// RunOnce claims one batch, delivers it with cfg.Workers sends at once and
// returns how many messages were sent. The error is a failed claim or an
// incomplete Config; failed deliveries are recorded, not returned. While
// the worker pauses after a server failure RunOnce does nothing.
func (w *Worker) RunOnce(ctx context.Context) (sent int, err error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	if w.pauseLeft() > 0 {
		return 0, nil
	}
	msgs, until, err := w.claim(ctx)
	if err != nil {
		return 0, err
	}
	jobs := make(chan job)
	results := make(chan bool, len(msgs))
	var wg sync.WaitGroup
	for range min(w.cfg.Workers, len(msgs)) {
		wg.Go(func() {
			for j := range jobs {
				results <- w.deliver(ctx, j)
			}
		})
	}
	for _, m := range msgs {
		if ctx.Err() != nil {
			break
		}
		jobs <- job{m, until}
	}
	close(jobs)
	wg.Wait()
	close(results)
	for ok := range results {
		if ok {
			sent++
		}
	}
	return sent, nil
}

func (w *Worker) claim(ctx context.Context) ([]Message, time.Time, error) {
	// The lease is measured on the store's clock (cfg.Now); sends are
	// limited on the real one, with a margin for recording the outcome.
	until := time.Now().Add(w.cfg.Lease - min(w.cfg.Lease/10, 10*time.Second))
	msgs, err := w.cfg.Store.ClaimDue(ctx, w.cfg.Now(), w.cfg.Batch, w.cfg.Lease)
	return msgs, until, err
}

// deliver renders, composes and sends one message and records the outcome.
// It reports whether the message was sent. Once started it is not cut short
// by ctx, only by the end of the lease, so that a shutdown neither abandons
// a message the server may have accepted nor leaves that unrecorded.
func (w *Worker) deliver(ctx context.Context, j job) bool {
	m := j.m
	log := w.cfg.Logger.With("message", m.ID, "message_id", m.MessageID, "template", m.Template, "domain", domain(m.To))
	if time.Now().After(j.until) {
		// Another worker may hold it by now; leave it to the next claim.
		log.Warn("outbox: lease ran out before sending")
		return false
	}
	if w.pauseLeft() > 0 {
		// The server is failing: leave the message leased, to come back
		// when the lease ends, rather than spend one of its attempts.
		return false
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), j.until)
	defer cancel()

	raw, err := w.compose(m)
	if err != nil {
		w.fail(ctx, log, m, err.Error())
		return false
	}
	err = w.cfg.Sender.Send(ctx, w.cfg.From.Addr, []string{m.To}, raw)
	trouble, notMessage := classify(err)
	if trouble {
		w.pause(log, err)
	} else if err == nil {
		w.resume()
	}
	switch {
	case err == nil:
		w.cfg.Observer.Sent()
		if err := w.cfg.Store.MarkSent(ctx, m.ID, w.cfg.Now()); err != nil {
			// The message is out; if this is lost it will go out again
			// with the same Message-ID when the lease ends.
			log.Error("outbox: sent but not recorded", "err", err)
			return true
		}
		log.Debug("outbox: sent")
		return true
	case mail.IsPermanent(err):
		w.fail(ctx, log, m, err.Error())
	case m.Attempts+1 >= w.cfg.MaxAttempts && !notMessage:
		w.fail(ctx, log, m, "gave up after "+strconv.Itoa(m.Attempts+1)+" attempts: "+err.Error())
	default:
		next := w.cfg.Now().Add(w.cfg.Backoff(m.Attempts + 1))
		if merr := w.cfg.Store.MarkRetry(ctx, m.ID, next, err.Error()); merr != nil {
			log.Error("outbox: retry not recorded", "reason", err, "err", merr)
			return false
		}
		w.cfg.Observer.Failed(false)
		log.Warn("outbox: will retry", "reason", err, "attempt", m.Attempts+1, "next", next)
	}
	return false
}

// classify tells apart the failures that are not the message's fault:
// trouble with the server or our connection to it (it is down, TLS or
// authentication fails, the Sender was closed), which pauses the worker,
// and, besides those, waiting in vain for a free connection. Neither
// counts towards MaxAttempts: an SMTP outage of a day must not fail every
// invitation in the queue.
func classify(err error) (trouble, notMessage bool) {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return false, false
	}
	switch se.Op {
	case "dial", "tls", "greeting", "hello", "starttls", "auth", "closed":
		return true, true
	case "wait":
		return false, true
	}
	return false, false
}

// pause stops new sends for the poll interval, doubling with each
// further server failure up to a minute.
func (w *Worker) pause(log *slog.Logger, err error) {
	w.mu.Lock()
	w.troubles++
	d := min(w.cfg.PollInterval<<min(w.troubles-1, 20), time.Minute)
	w.paused = time.Now().Add(d)
	w.mu.Unlock()
	log.Warn("outbox: SMTP server failing, pausing", "reason", err, "pause", d)
}

func (w *Worker) resume() {
	w.mu.Lock()
	w.troubles, w.paused = 0, time.Time{}
	w.mu.Unlock()
}

func (w *Worker) pauseLeft() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Until(w.paused)
}

func (w *Worker) fail(ctx context.Context, log *slog.Logger, m Message, reason string) {
	if err := w.cfg.Store.MarkFailed(ctx, m.ID, reason); err != nil {
		log.Error("outbox: failure not recorded", "reason", reason, "err", err)
		return
	}
	w.cfg.Observer.Failed(true)
	log.Error("outbox: failed", "reason", reason, "attempt", m.Attempts+1)
}

// compose renders m and composes it with its stored Message-ID, so that
// every attempt sends the same message as far as the recipient can tell.
func (w *Worker) compose(m Message) ([]byte, error) {
	if _, ok := m.Data["Sender"]; !ok && w.cfg.From.Name != "" && m.Data != nil {
		data := make(map[string]string, len(m.Data)+1)
		for k, v := range m.Data {
			data[k] = v
		}
		data["Sender"] = w.cfg.From.Name
		m.Data = data
	}
	r, err := w.cfg.Templates.Render(m)
	if err != nil {
		return nil, err
	}
	raw, _, err := mail.Compose(&mail.Message{
		From:        w.cfg.From,
		To:          []mail.Address{{Addr: m.To}},
		Subject:     r.Subject,
		Text:        r.Text,
		HTML:        r.HTML,
		Attachments: r.Attachments,
		// RFC 3834: no vacation replies to a robot.
		Headers:   map[string]string{"Auto-Submitted": "auto-generated"},
		MessageID: m.MessageID,
	}, w.cfg.Now())
	return raw, err
}

// domain returns the part of addr after the last @, for logs that must not
// name the person.
func domain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}
