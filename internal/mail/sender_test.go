package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/mail"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

// newSender returns a Sender for sink, closed when the test ends.
func newSender(t testing.TB, sink *smtpsink.Server, cfg mail.SMTPConfig) *mail.Sender {
	t.Helper()
	host, port, err := net.SplitHostPort(sink.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = host
	cfg.Port, _ = strconv.Atoi(port)
	if cfg.TLS == "" {
		cfg.TLS = "none"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	s, err := mail.NewSender(cfg)
	if err != nil {
		t.Fatalf("NewSender() error = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testMessage(t testing.TB, to string, i int) []byte {
	t.Helper()
	raw, _, err := mail.Compose(&mail.Message{
		From:    mail.Address{Name: "Example CA", Addr: "ca@example.com"},
		To:      []mail.Address{{Name: "Recipient", Addr: to}},
		Subject: "Message " + strconv.Itoa(i),
		Text:    "Hello,\n.\nthis line starts with a dot, as does the one above.\n" + strings.Repeat("Lorem ipsum dolor sit amet. ", 40),
		HTML:    "<p>Hello</p>",
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func send(t testing.TB, s *mail.Sender, to string, i int) error {
	t.Helper()
	return s.Send(context.Background(), "bounces@example.com", []string{to}, testMessage(t, to, i))
}

func TestSendPlain(t *testing.T) {
	sink := smtpsink.Start(t)
	s := newSender(t, sink, mail.SMTPConfig{HeloName: "mailca.test"})
	msg := testMessage(t, "alice@example.com", 1)
	if err := s.Send(context.Background(), "bounces@example.com", []string{"alice@example.com", "bob@example.com"}, msg); err != nil {
		t.Fatalf("Send() error = %v", err)
	}
	got := sink.WaitFor(t, 1, 5*time.Second)[0]
	if got.From != "bounces@example.com" || strings.Join(got.To, ",") != "alice@example.com,bob@example.com" {
		t.Errorf("envelope = %q -> %q", got.From, got.To)
	}
	if !bytes.Equal(got.Data, msg) {
		t.Errorf("received data differs from what was sent:\n%q\nwant\n%q", got.Data, msg)
	}
	if got.TLS || got.User != "" {
		t.Errorf("received TLS %v user %q, want neither", got.TLS, got.User)
	}
	if _, err := got.Parse(); err != nil {
		t.Errorf("received message does not parse: %v", err)
	}
}

func TestSendManyOnOneConnection(t *testing.T) {
	sink := smtpsink.Start(t)
	s := newSender(t, sink, mail.SMTPConfig{})
	for i := range 50 {
		if err := send(t, s, "alice@example.com", i); err != nil {
			t.Fatalf("Send(%d) error = %v", i, err)
		}
	}
	for i, m := range sink.WaitFor(t, 50, 5*time.Second) {
		p, err := m.Parse()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Header.Get("Subject"), "Message "+strconv.Itoa(i); got != want {
			t.Errorf("message %d has subject %q, want %q", i, got, want)
		}
	}
}

func TestSendSTARTTLS(t *testing.T) {
	cert, pool := smtpsink.SelfSigned(t)
	sink := smtpsink.Start(t, smtpsink.WithSTARTTLS(cert), smtpsink.WithAuth("mailca", "s3cret"))
	s := newSender(t, sink, mail.SMTPConfig{TLS: "starttls", RootCAs: pool, Username: "mailca", Password: "s3cret"})
	for i := range 3 {
		if err := send(t, s, "alice@example.com", i); err != nil {
			t.Fatalf("Send() error = %v", err)
		}
	}
	for _, got := range sink.WaitFor(t, 3, 5*time.Second) {
		if !got.TLS || got.User != "mailca" {
			t.Errorf("received TLS %v user %q, want TLS and mailca", got.TLS, got.User)
		}
	}
}

func TestSendImplicitTLS(t *testing.T) {
	cert, pool := smtpsink.SelfSigned(t)
	sink := smtpsink.Start(t, smtpsink.WithTLS(cert), smtpsink.WithAuth("mailca", "s3cret"))
	s := newSender(t, sink, mail.SMTPConfig{TLS: "tls", RootCAs: pool, Username: "mailca", Password: "s3cret"})
	if err := send(t, s, "alice@example.com", 0); err != nil {
		t.Fatalf("Send() error = %v", err)
	}
	if got := sink.WaitFor(t, 1, 5*time.Second)[0]; !got.TLS || got.User != "mailca" {
		t.Errorf("received TLS %v user %q, want TLS and mailca", got.TLS, got.User)
	}
}

func TestSendAuthOverPlainLoopback(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.WithAuth("mailca", "s3cret"))
	s := newSender(t, sink, mail.SMTPConfig{Username: "mailca", Password: "s3cret"})
	if err := send(t, s, "alice@example.com", 0); err != nil {
		t.Fatalf("Send() error = %v", err)
	}
	if got := sink.WaitFor(t, 1, 5*time.Second)[0]; got.User != "mailca" {
		t.Errorf("received user %q, want mailca", got.User)
	}
}

// TestSendConnectFailures checks failures that concern the server or the
// configuration: all must be temporary, whatever the reply code, so that
// the outbox keeps the messages until someone fixes the cause.
func TestSendConnectFailures(t *testing.T) {
	cert, pool := smtpsink.SelfSigned(t)
	closed := smtpsink.Start(t)
	closed.Close()
	tests := []struct {
		name string
		opts []smtpsink.Option
		sink *smtpsink.Server
		cfg  mail.SMTPConfig
		op   string
		code int
	}{
		{"no STARTTLS offered", nil, nil, mail.SMTPConfig{TLS: "starttls", RootCAs: pool}, "starttls", 0},
		{"untrusted certificate", []smtpsink.Option{smtpsink.WithSTARTTLS(cert)}, nil, mail.SMTPConfig{TLS: "starttls"}, "starttls", 0},
		{"wrong password", []smtpsink.Option{smtpsink.WithSTARTTLS(cert), smtpsink.WithAuth("mailca", "s3cret")}, nil,
			mail.SMTPConfig{TLS: "starttls", RootCAs: pool, Username: "mailca", Password: "wrong"}, "auth", 535},
		{"no AUTH offered", nil, nil, mail.SMTPConfig{Username: "mailca", Password: "s3cret"}, "auth", 0},
		{"auth required", []smtpsink.Option{smtpsink.WithAuth("mailca", "s3cret")}, nil, mail.SMTPConfig{}, "mail", 530},
		{"server down", nil, closed, mail.SMTPConfig{}, "dial", 0},
		{"implicit TLS to plain server", nil, nil, mail.SMTPConfig{TLS: "tls", RootCAs: pool, Timeout: 300 * time.Millisecond}, "tls", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := tt.sink
			if sink == nil {
				sink = smtpsink.Start(t, tt.opts...)
			}
			s := newSender(t, sink, tt.cfg)
			err := send(t, s, "alice@example.com", 0)
			var se *mail.SendError
			if !errors.As(err, &se) {
				t.Fatalf("Send() error = %v, want *SendError", err)
			}
			if se.Op != tt.op || se.Code != tt.code || se.Permanent || mail.IsPermanent(err) {
				t.Errorf("Send() error = %+v, want temporary, op %s, code %d", se, tt.op, tt.code)
			}
			if n := sink.Count(); n != 0 {
				t.Errorf("sink received %d messages, want 0", n)
			}
		})
	}
}

func TestSendRejections(t *testing.T) {
	sink := smtpsink.Start(t,
		smtpsink.WithRejectRecipient(func(rcpt string) (int, string) {
			switch rcpt {
			case "nouser@example.com":
				return 550, "5.1.1 no such user"
			case "full@example.com":
				return 452, "4.2.2 mailbox full"
			case "busy@example.com":
				return 421, "4.3.2 shutting down"
			}
			return 0, ""
		}),
		smtpsink.WithRejectData(func(r smtpsink.Received) (int, string) {
			switch r.To[0] {
			case "spam@example.com":
				return 554, "5.7.1 rejected as spam"
			case "later@example.com":
				return 451, "4.7.1 try again later"
			}
			return 0, ""
		}),
	)
	s := newSender(t, sink, mail.SMTPConfig{})
	tests := []struct {
		to        []string
		op        string
		code      int
		permanent bool
	}{
		{[]string{"nouser@example.com"}, "rcpt", 550, true},
		{[]string{"alice@example.com", "nouser@example.com"}, "rcpt", 550, true},
		{[]string{"full@example.com"}, "rcpt", 452, false},
		{[]string{"spam@example.com"}, "data", 554, true},
		{[]string{"later@example.com"}, "data", 451, false},
		{[]string{"busy@example.com"}, "rcpt", 421, false},
		{[]string{"alice\r\nDATA@example.com"}, "envelope", 0, true},
		{nil, "envelope", 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.to, ","), func(t *testing.T) {
			err := s.Send(context.Background(), "ca@example.com", tt.to, testMessage(t, "x@example.com", 0))
			var se *mail.SendError
			if !errors.As(err, &se) {
				t.Fatalf("Send() error = %v, want *SendError", err)
			}
			if se.Op != tt.op || se.Code != tt.code || se.Permanent != tt.permanent || mail.IsPermanent(err) != tt.permanent {
				t.Errorf("Send() error = %+v, want op %s code %d permanent %v", se, tt.op, tt.code, tt.permanent)
			}
			// The connection survives a refusal and the next message goes.
			if err := send(t, s, "alice@example.com", 1); err != nil {
				t.Errorf("Send() after refusal: %v", err)
			}
		})
	}
	if got := sink.Count(); got != len(tests) {
		t.Errorf("sink received %d messages, want %d", got, len(tests))
	}
}

func TestSendSMTPUTF8(t *testing.T) {
	for _, offered := range []bool{true, false} {
		t.Run(fmt.Sprint("offered=", offered), func(t *testing.T) {
			var opts []smtpsink.Option
			if !offered {
				opts = append(opts, smtpsink.WithoutSMTPUTF8())
			}
			sink := smtpsink.Start(t, opts...)
			s := newSender(t, sink, mail.SMTPConfig{})
			raw, _, err := mail.Compose(&mail.Message{
				From:    mail.Address{Addr: "ca@example.com"},
				To:      []mail.Address{{Name: "Jürgen", Addr: "jürgen@example.com"}},
				Subject: "x",
				Text:    "x",
			}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), "ca@example.com", []string{"jürgen@example.com"}, raw)
			if offered {
				if err != nil {
					t.Fatalf("Send() error = %v", err)
				}
				if got := sink.WaitFor(t, 1, 5*time.Second)[0].To[0]; got != "jürgen@example.com" {
					t.Errorf("recipient = %q", got)
				}
				return
			}
			if !mail.IsPermanent(err) {
				t.Errorf("Send() error = %v, want permanent", err)
			}
			if err := send(t, s, "alice@example.com", 0); err != nil {
				t.Errorf("Send() of an ASCII message afterwards: %v", err)
			}
		})
	}
}

func TestSendReconnects(t *testing.T) {
	sink := smtpsink.Start(t)
	s := newSender(t, sink, mail.SMTPConfig{})
	for i := range 5 {
		if err := send(t, s, "alice@example.com", i); err != nil {
			t.Fatalf("Send(%d) error = %v", i, err)
		}
		sink.CloseConnections()
	}
	sink.WaitFor(t, 5, 5*time.Second)
}

func TestSendReconnectsAfter421(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.WithMaxMessagesPerConn(3))
	s := newSender(t, sink, mail.SMTPConfig{})
	for i := range 10 {
		if err := send(t, s, "alice@example.com", i); err != nil {
			t.Fatalf("Send(%d) error = %v", i, err)
		}
	}
	sink.WaitFor(t, 10, 5*time.Second)
}

// TestSendRestartedServer checks that a Sender recovers when the server
// goes away and comes back on the same address.
func TestSendRestartedServer(t *testing.T) {
	sink := smtpsink.Start(t)
	s := newSender(t, sink, mail.SMTPConfig{})
	if err := send(t, s, "alice@example.com", 0); err != nil {
		t.Fatal(err)
	}
	addr := sink.Addr
	sink.Close()
	if err := send(t, s, "alice@example.com", 1); err == nil || mail.IsPermanent(err) {
		t.Fatalf("Send() to a stopped server = %v, want a temporary error", err)
	}
	again, err := smtpsink.Listen(addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer again.Close()
	if err := send(t, s, "alice@example.com", 2); err != nil {
		t.Fatalf("Send() after restart: %v", err)
	}
}

func TestSendTimeout(t *testing.T) {
	sink := smtpsink.Start(t, smtpsink.WithDelay(time.Second))
	s := newSender(t, sink, mail.SMTPConfig{Timeout: 100 * time.Millisecond})
	start := time.Now()
	err := send(t, s, "alice@example.com", 0)
	if err == nil || mail.IsPermanent(err) {
		t.Fatalf("Send() = %v, want a temporary error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Send() error = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 800*time.Millisecond {
		t.Errorf("Send() took %v with a timeout of 100ms", d)
	}
}

func TestSendContext(t *testing.T) {
	sink := smtpsink.Start(t)
	s := newSender(t, sink, mail.SMTPConfig{})
	if err := send(t, s, "alice@example.com", 0); err != nil {
		t.Fatal(err)
	}

	slow := smtpsink.Start(t, smtpsink.WithDelay(2*time.Second))
	s = newSender(t, slow, mail.SMTPConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, "ca@example.com", []string{"alice@example.com"}, testMessage(t, "alice@example.com", 0))
	if !errors.Is(err, context.DeadlineExceeded) || mail.IsPermanent(err) {
		t.Errorf("Send() error = %v, want temporary, wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Send() took %v after its context ended at 100ms", d)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, "ca@example.com", []string{"alice@example.com"}, testMessage(t, "alice@example.com", 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Send() with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestSendConcurrent(t *testing.T) {
	sink := smtpsink.Start(t)
	s := newSender(t, sink, mail.SMTPConfig{Connections: 4})
	const workers, each = 20, 25
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		retried int
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				to := fmt.Sprintf("w%d-%d@example.com", w, i)
				// Retry temporary failures, as the outbox does: a
				// connection dropped after the final dot is one.
				for attempt := 0; ; attempt++ {
					err := send(t, s, to, i)
					if err == nil {
						break
					}
					if mail.IsPermanent(err) || attempt == 3 {
						t.Errorf("Send() error = %v", err)
						break
					}
					mu.Lock()
					retried++
					mu.Unlock()
				}
			}
		})
	}
	// Dropped connections in the middle must not lose messages.
	time.Sleep(5 * time.Millisecond)
	sink.CloseConnections()
	wg.Wait()
	seen := map[string]int{}
	dup := 0
	for _, m := range sink.WaitFor(t, workers*each, 10*time.Second) {
		if seen[m.To[0]]++; seen[m.To[0]] > 1 {
			dup++
		}
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct recipients, want %d", len(seen), workers*each)
	}
	if dup > retried {
		t.Errorf("%d messages received twice but only %d retried", dup, retried)
	}
}

func TestSendAfterClose(t *testing.T) {
	sink := smtpsink.Start(t)
	s := newSender(t, sink, mail.SMTPConfig{Connections: 2})
	if err := send(t, s, "alice@example.com", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() error = %v", err)
	}
	if err := send(t, s, "alice@example.com", 1); !errors.Is(err, mail.ErrClosed) {
		t.Errorf("Send() after Close = %v, want ErrClosed", err)
	}
}

func TestNewSenderRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  mail.SMTPConfig
	}{
		{"no host", mail.SMTPConfig{}},
		{"plain text to a remote host", mail.SMTPConfig{Host: "smtp.example.com", TLS: "none"}},
		{"plain text to a private address", mail.SMTPConfig{Host: "10.0.0.1", TLS: "none"}},
		{"unknown TLS mode", mail.SMTPConfig{Host: "smtp.example.com", TLS: "ssl"}},
		{"bad port", mail.SMTPConfig{Host: "smtp.example.com", Port: 70000}},
		{"password without user", mail.SMTPConfig{Host: "smtp.example.com", Password: "x"}},
		{"negative timeout", mail.SMTPConfig{Host: "smtp.example.com", Timeout: -1}},
		{"bad helo", mail.SMTPConfig{Host: "smtp.example.com", HeloName: "a b"}},
		{"host with CRLF", mail.SMTPConfig{Host: "smtp.example.com\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := mail.NewSender(tt.cfg); err == nil {
				t.Errorf("NewSender(%+v) = nil error", tt.cfg)
			}
		})
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "127.0.0.53"} {
		if _, err := mail.NewSender(mail.SMTPConfig{Host: host, TLS: "none"}); err != nil {
			t.Errorf("NewSender(%s, none) error = %v", host, err)
		}
	}
}

// BenchmarkSend sends composed messages of about 2 KB to a loopback sink.
func BenchmarkSend(b *testing.B) {
	for _, conns := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			sink := smtpsink.Start(b, smtpsink.WithDiscard())
			s := newSender(b, sink, mail.SMTPConfig{Connections: conns})
			msg := testMessage(b, "alice@example.com", 0)
			to := []string{"alice@example.com"}
			b.SetBytes(int64(len(msg)))
			b.SetParallelism(max(1, (conns+3)/4))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Send(context.Background(), "ca@example.com", to, msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSendTLS is BenchmarkSend over STARTTLS with AUTH.
func BenchmarkSendTLS(b *testing.B) {
	cert, pool := smtpsink.SelfSigned(b)
	sink := smtpsink.Start(b, smtpsink.WithDiscard(), smtpsink.WithSTARTTLS(cert), smtpsink.WithAuth("u", "p"))
	s := newSender(b, sink, mail.SMTPConfig{TLS: "starttls", RootCAs: pool, Username: "u", Password: "p", Connections: 4})
	msg := testMessage(b, "alice@example.com", 0)
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Send(context.Background(), "ca@example.com", []string{"alice@example.com"}, msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
