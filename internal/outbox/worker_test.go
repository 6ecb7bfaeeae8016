package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/mail"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

// runOnce calls RunOnce and fails the test on error.
func runOnce(t *testing.T, w *outbox.Worker) int {
	t.Helper()
	n, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce() error = %v", err)
	}
	return n
}

func TestDeliverEachTemplateOnce(t *testing.T) {
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t)
	c := newClock()
	w := newWorker(t, db, sink, c, nil)
	var mails []enrol.Mail
	for _, name := range templateNames {
		mails = append(mails, enrol.Mail{Template: name, To: "alice@example.com", Data: testData(name, "alice@example.com"), MessageID: "<" + name + "@mailca.test>"})
	}
	enqueue(t, db, mails...)

	if n := runOnce(t, w); n != len(mails) {
		t.Errorf("RunOnce() sent %d, want %d", n, len(mails))
	}
	if n := runOnce(t, w); n != 0 {
		t.Errorf("second RunOnce() sent %d, want 0", n)
	}
	got := sink.Messages()
	ids := messageIDs(t, got)
	for _, m := range mails {
		if ids[m.MessageID] != 1 {
			t.Errorf("%s delivered %d times, want once", m.MessageID, ids[m.MessageID])
		}
	}
	for _, r := range got {
		p, _ := r.Parse()
		if r.From != "certificates@example.com" || len(r.To) != 1 || r.To[0] != "alice@example.com" {
			t.Errorf("envelope %s -> %v", r.From, r.To)
		}
		if p.Header.Get("Auto-Submitted") != "auto-generated" || !strings.Contains(p.Header.Get("From"), "Example Corp Certificates") {
			t.Errorf("headers %v", p.Header)
		}
		if id := p.Header.Get("Message-Id"); id == "<invitation@mailca.test>" {
			if got, want := p.Header.Get("Subject"), "Example Corp Certificates invites you to get an email certificate"; got != want {
				t.Errorf("invitation Subject = %q, want %q", got, want)
			}
		}
	}
	for _, m := range messages(t, db) {
		if m.State != "sent" || m.Data != nil || m.Attempts != 1 || !m.SentAt.Equal(c.now().Truncate(time.Second)) {
			t.Errorf("message %d after delivery: state %s, data %v, attempts %d, sent %v", m.ID, m.State, m.Data, m.Attempts, m.SentAt)
		}
	}
}

// TestIssuedMailCarriesCertificate reads the delivered message back as a
// mail client would and finds both attachments.
func TestIssuedMailCarriesCertificate(t *testing.T) {
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t)
	w := newWorker(t, db, sink, nil, nil)
	enqueue(t, db, enrol.Mail{Template: "issued", To: "alice@example.com", Data: testData("issued", "alice@example.com"), MessageID: "<issued@mailca.test>"})
	runOnce(t, w)
	p, err := sink.WaitFor(t, 1, 5*time.Second)[0].Parse()
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
	if mt != "multipart/mixed" {
		t.Fatalf("Content-Type %s, want multipart/mixed", mt)
	}
	var parts []string
	mr := multipart.NewReader(p.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		parts = append(parts, ct+" "+part.FileName())
	}
	if got, want := strings.Join(parts, ", "), "multipart/alternative , application/x-pem-file certificate.pem, application/pkix-cert certificate.cer"; got != want {
		t.Errorf("parts = %s, want %s", got, want)
	}
}

func TestPermanentRejectionFails(t *testing.T) {
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t, smtpsink.WithRejectRecipient(func(rcpt string) (int, string) {
		if rcpt == "gone@example.com" {
			return 550, "5.1.1 no such mailbox"
		}
		return 0, ""
	}))
	c := newClock()
	w := newWorker(t, db, sink, c, nil)
	enqueue(t, db,
		enrol.Mail{Template: "invitation", To: "gone@example.com", Data: testData("invitation", "gone@example.com"), MessageID: "<gone@mailca.test>"},
		enrol.Mail{Template: "invitation", To: "here@example.com", Data: testData("invitation", "here@example.com"), MessageID: "<here@mailca.test>"})

	if n := runOnce(t, w); n != 1 {
		t.Errorf("RunOnce() sent %d, want 1", n)
	}
	c.advance(24 * time.Hour)
	if n := runOnce(t, w); n != 0 {
		t.Errorf("RunOnce() a day later sent %d, want 0", n)
	}
	m := messages(t, db)[0]
	if m.To != "gone@example.com" || m.State != "failed" || m.Attempts != 1 || !strings.Contains(m.LastError, "550") || !strings.Contains(m.LastError, "no such mailbox") || m.Data != nil {
		t.Errorf("rejected message = state %s, attempts %d, error %q, data %v", m.State, m.Attempts, m.LastError, m.Data)
	}
	if sink.Count() != 1 {
		t.Errorf("sink received %d, want 1", sink.Count())
	}
}

func TestTemporaryRejectionRetried(t *testing.T) {
	db := mustOpenDB(t, "")
	var refusals atomic.Int32
	sink := smtpsink.Start(t, smtpsink.WithRejectRecipient(func(string) (int, string) {
		if refusals.Add(1) <= 2 {
			return 451, "4.7.1 greylisted, try later"
		}
		return 0, ""
	}))
	c := newClock()
	var attempts []int
	w := newWorker(t, db, sink, c, func(cfg *outbox.Config) {
		cfg.Backoff = func(n int) time.Duration { attempts = append(attempts, n); return 5 * time.Minute }
	})
	enqueue(t, db, enrol.Mail{Template: "approved", To: "alice@example.com", Data: testData("approved", "alice@example.com"), MessageID: "<grey@mailca.test>"})

	for i := 1; i <= 2; i++ {
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("attempt %d sent %d, want 0", i, n)
		}
		m := messages(t, db)[0]
		if m.State != "pending" || m.Attempts != i || !strings.Contains(m.LastError, "451") || !m.NextAttempt.Equal(c.now().Add(5*time.Minute).Truncate(time.Second)) || m.Data == nil {
			t.Fatalf("after attempt %d: state %s, attempts %d, error %q, next %v", i, m.State, m.Attempts, m.LastError, m.NextAttempt)
		}
		// Not due yet: nothing happens.
		c.advance(4 * time.Minute)
		if n := runOnce(t, w); n != 0 || refusals.Load() != int32(i) {
			t.Fatalf("retried before its time")
		}
		c.advance(time.Minute)
	}
	if n := runOnce(t, w); n != 1 {
		t.Fatalf("third attempt sent %d, want 1", n)
	}
	if ids := messageIDs(t, sink.Messages()); len(ids) != 1 || ids["<grey@mailca.test>"] != 1 {
		t.Errorf("delivered %v, want <grey@mailca.test> once", ids)
	}
	if m := messages(t, db)[0]; m.State != "sent" || m.Attempts != 3 || m.LastError != "" {
		t.Errorf("after delivery: state %s, attempts %d, error %q", m.State, m.Attempts, m.LastError)
	}
	if len(attempts) != 2 || attempts[0] != 1 || attempts[1] != 2 {
		t.Errorf("Backoff called with %v, want [1 2]", attempts)
	}
}

func TestMaxAttempts(t *testing.T) {
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t, smtpsink.WithRejectRecipient(func(string) (int, string) { return 452, "4.2.2 mailbox full" }))
	c := newClock()
	w := newWorker(t, db, sink, c, func(cfg *outbox.Config) {
		cfg.MaxAttempts = 3
		cfg.Backoff = func(int) time.Duration { return time.Minute }
	})
	enqueue(t, db, enrol.Mail{Template: "rejected", To: "full@example.com", Data: testData("rejected", "full@example.com"), MessageID: "<full@mailca.test>"})
	for range 5 {
		runOnce(t, w)
		c.advance(time.Minute)
	}
	m := messages(t, db)[0]
	if m.State != "failed" || m.Attempts != 3 || !strings.Contains(m.LastError, "gave up after 3 attempts") || !strings.Contains(m.LastError, "452") {
		t.Errorf("state %s, attempts %d, error %q; want failed after 3", m.State, m.Attempts, m.LastError)
	}
}

func TestRenderFailureIsPermanent(t *testing.T) {
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t)
	w := newWorker(t, db, sink, nil, nil)
	bad := testData("invitation", "a@example.com")
	delete(bad, "Link")
	enqueue(t, db,
		enrol.Mail{Template: "nonesuch", To: "a@example.com", Data: map[string]string{}, MessageID: "<a@mailca.test>"},
		enrol.Mail{Template: "invitation", To: "a@example.com", Data: bad, MessageID: "<b@mailca.test>"},
		enrol.Mail{Template: "invitation", To: "not an address", Data: testData("invitation", "x"), MessageID: "<c@mailca.test>"})
	if n := runOnce(t, w); n != 0 {
		t.Errorf("RunOnce() sent %d, want 0", n)
	}
	for _, m := range messages(t, db) {
		if m.State != "failed" || m.Attempts != 1 || m.LastError == "" {
			t.Errorf("message %s: state %s, attempts %d, error %q", m.MessageID, m.State, m.Attempts, m.LastError)
		}
	}
	if sink.Count() != 0 {
		t.Errorf("sink received %d", sink.Count())
	}
}

// TestConnectionDrops has the server hang up on every connection at
// intervals, mid-message: every message still arrives.
func TestConnectionDrops(t *testing.T) {
	const n, every = 300, 40
	db := mustOpenDB(t, "")
	var sink *smtpsink.Server
	var calls, drops atomic.Int32
	sink = smtpsink.Start(t, smtpsink.WithRejectData(func(smtpsink.Received) (int, string) {
		if calls.Add(1)%every == 0 {
			drops.Add(1)
			sink.CloseConnections()
			return 421, "4.3.0 going away"
		}
		return 0, ""
	}))
	w := newWorker(t, db, sink, nil, func(cfg *outbox.Config) {
		cfg.Backoff = func(int) time.Duration { return 0 }
		cfg.PollInterval = 10 * time.Millisecond
	})
	enqueue(t, db, invitations(n)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	waitUntil(t, 30*time.Second, func() bool { return len(messageIDs(t, sink.Messages())) == n })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	ids := messageIDs(t, sink.Messages())
	for _, m := range invitations(n) {
		if ids[m.MessageID] == 0 {
			t.Errorf("%s never arrived", m.MessageID)
		}
	}
	// A connection cut after the server took a message but before the
	// client read the reply may make one duplicate, under the same
	// Message-ID, per connection per drop. The dropping connection itself
	// never took its message.
	if dup := sink.Count() - n; dup > int(drops.Load())*3 {
		t.Errorf("%d duplicates after %d drops of 4 connections", dup, drops.Load())
	} else {
		t.Logf("%d drops, %d duplicates", drops.Load(), dup)
	}
	if drops.Load() < 5 {
		t.Errorf("only %d drops; the test did not test", drops.Load())
	}
	if got := mustCounts(t, db); got != "pending 0, sent 300, failed 0" {
		t.Errorf("counts: %s", got)
	}
}

// TestTwoWorkers runs two workers, as two processes would, on one
// database: the leases give each message to one of them.
func TestTwoWorkers(t *testing.T) {
	const n = 400
	path := t.TempDir() + "/shared.db"
	db1, db2 := mustOpenDB(t, path), mustOpenDB(t, path)
	sink := smtpsink.Start(t)
	small := func(cfg *outbox.Config) { cfg.Batch = 10; cfg.PollInterval = 5 * time.Millisecond }
	w1, w2 := newWorker(t, db1, sink, nil, small), newWorker(t, db2, sink, nil, small)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range []*outbox.Worker{w1, w2} {
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Errorf("Run() = %v", err)
			}
		})
	}
	// Enqueue while they run, in small transactions, as enrolment does.
	all := invitations(n)
	for i := 0; i < n; i += 20 {
		enqueue(t, db1, all[i:i+20]...)
		w1.Wake()
		w2.Wake()
	}
	waitUntil(t, 30*time.Second, func() bool { return sink.Count() >= n })
	// Give a double delivery the chance to show.
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	ids := messageIDs(t, sink.Messages())
	if sink.Count() != n || len(ids) != n {
		t.Errorf("received %d messages with %d distinct Message-IDs, want %d and %d", sink.Count(), len(ids), n, n)
	}
	if got := mustCounts(t, db2); got != "pending 0, sent 400, failed 0" {
		t.Errorf("counts: %s", got)
	}
}

// TestShutdownFinishesSends cancels Run while sends are in progress: each
// message the server took is recorded as sent, and the rest go out later.
func TestShutdownFinishesSends(t *testing.T) {
	const n = 60
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t, smtpsink.WithDelay(5*time.Millisecond))
	c := newClock()
	w := newWorker(t, db, sink, c, nil)
	enqueue(t, db, invitations(n)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	sink.WaitFor(t, 5, 10*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	received := messageIDs(t, sink.Messages())
	if len(received) == n {
		t.Fatalf("all %d sent before the shutdown took effect; slow the sink down", n)
	}
	for _, m := range messages(t, db) {
		if (m.State == "sent") != (received[m.MessageID] == 1) {
			t.Errorf("%s: state %s, received %d times", m.MessageID, m.State, received[m.MessageID])
		}
	}
	// What was claimed but not started waits for its lease to end.
	c.advance(2 * time.Minute)
	for range 10 {
		runOnce(t, w)
	}
	if got := mustCounts(t, db); got != "pending 0, sent 60, failed 0" {
		t.Errorf("counts after restart: %s", got)
	}
	if ids := messageIDs(t, sink.Messages()); len(ids) != n || sink.Count() != n {
		t.Errorf("received %d messages, %d distinct; want %d once each", sink.Count(), len(ids), n)
	}
}

func TestWake(t *testing.T) {
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t)
	w := newWorker(t, db, sink, nil, func(cfg *outbox.Config) { cfg.PollInterval = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	time.Sleep(50 * time.Millisecond) // let Run go to sleep on its poll
	enqueue(t, db, invitations(1)...)
	w.Wake()
	w.Wake() // never blocks
	sink.WaitFor(t, 1, 5*time.Second)
}

func TestIncompleteConfig(t *testing.T) {
	w := outbox.NewWorker(outbox.Config{})
	if _, err := w.RunOnce(context.Background()); err == nil {
		t.Error("RunOnce() with no store succeeded")
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("Run() with no store succeeded")
	}
}

// TestLogsHoldNoData runs deliveries that succeed, fail and are retried
// with logging at debug level, and looks for message data in the logs.
func TestLogsHoldNoData(t *testing.T) {
	db := mustOpenDB(t, "")
	sink := smtpsink.Start(t, smtpsink.WithRejectRecipient(func(rcpt string) (int, string) {
		switch rcpt {
		case "gone@example.com":
			return 550, "5.1.1 unknown"
		case "later@example.com":
			return 451, "4.3.0 later"
		}
		return 0, ""
	}))
	var logs bytes.Buffer
	w := newWorker(t, db, sink, nil, func(cfg *outbox.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	var mails []enrol.Mail
	for i, to := range []string{"alice@example.com", "gone@example.com", "later@example.com"} {
		for _, name := range templateNames {
			d := testData(name, to)
			d["GivenName"] = "Zebedee"
			mails = append(mails, enrol.Mail{Template: name, To: to, Data: d, MessageID: "<" + name + "." + strconv.Itoa(i) + "@mailca.test>"})
		}
	}
	enqueue(t, db, mails...)
	runOnce(t, w)
	out := logs.String()
	if !strings.Contains(out, `"domain":"example.com"`) || !strings.Contains(out, "<invitation.0@mailca.test>") {
		t.Fatalf("logs lack the message ID and domain:\n%s", out)
	}
	if !strings.Contains(out, "4.3.0 later") || !strings.Contains(out, "5.1.1 unknown") {
		t.Errorf("logs lack the reasons for the retry and the failure:\n%s", out)
	}
	for _, secret := range []string{"tok3n", "Zebedee", "Liddell", "alice@", "BEGIN CERTIFICATE", "not an employee"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
}

func waitUntil(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerDown delivers while the SMTP server is down, for longer than
// MaxAttempts would allow a message, and then brings it up: nothing fails
// and everything arrives.
func TestServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now the port refuses connections
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	sender, err := mail.NewSender(mail.SMTPConfig{Host: host, Port: p, TLS: "none", HeloName: "mailca.test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()

	db := mustOpenDB(t, "")
	c := newClock()
	w := newWorker(t, db, nil, c, func(cfg *outbox.Config) {
		cfg.Sender = sender
		cfg.Workers = 1
		cfg.MaxAttempts = 2
		cfg.PollInterval = 5 * time.Millisecond
		cfg.Backoff = func(int) time.Duration { return time.Minute }
	})
	enqueue(t, db, invitations(20)...)
	for range 6 {
		if n := runOnce(t, w); n != 0 {
			t.Fatalf("sent %d with the server down", n)
		}
		c.advance(3 * time.Minute) // past the backoff and the leases
		time.Sleep(200 * time.Millisecond)
	}
	maxAttempts := 0
	for _, m := range messages(t, db) {
		if m.State != "pending" || m.Data == nil {
			t.Fatalf("%s: state %s while the server was down", m.MessageID, m.State)
		}
		maxAttempts = max(maxAttempts, m.Attempts)
	}
	if maxAttempts <= 2 {
		t.Errorf("at most %d attempts on a message; the test did not outlast MaxAttempts", maxAttempts)
	}

	sink, err := smtpsink.Listen(addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer sink.Close()
	waitUntil(t, 10*time.Second, func() bool {
		runOnce(t, w)
		c.advance(3 * time.Minute)
		return sink.Count() >= 20
	})
	if got := mustCounts(t, db); got != "pending 0, sent 20, failed 0" {
		t.Errorf("counts: %s", got)
	}
}
