package smtpsink_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

// client is a raw SMTP client that checks each reply's code.
type client struct {
	t    testing.TB
	conn net.Conn
	tp   *textproto.Conn
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { c.tp.Close() })
	c.expect(220)
	return c
}

// cmd sends line and checks that the reply has code want; it returns the
// reply text.
func (c *client) cmd(want int, line string) string {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("sending %.40q: %v", line, err)
	}
	return c.expect(want)
}

func (c *client) expect(want int) string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	if code != want {
		c.t.Fatalf("reply %d %s, want %d", code, msg, want)
	}
	return msg
}

func TestTransaction(t *testing.T) {
	s := smtpsink.Start(t)
	c := dial(t, s.Addr)
	c.cmd(503, "MAIL FROM:<a@example.com>")
	ext := c.cmd(250, "EHLO client.example")
	for _, e := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE "} {
		if !strings.Contains(ext, e) {
			t.Errorf("EHLO reply %q lacks %s", ext, e)
		}
	}
	if strings.Contains(ext, "STARTTLS") || strings.Contains(ext, "AUTH") {
		t.Errorf("EHLO reply %q offers STARTTLS or AUTH without being configured", ext)
	}
	c.cmd(503, "RCPT TO:<b@example.com>")
	c.cmd(503, "DATA")
	c.cmd(250, "MAIL FROM:<a@example.com> BODY=8BITMIME")
	c.cmd(503, "MAIL FROM:<a@example.com>")
	c.cmd(554, "DATA")
	c.cmd(501, "RCPT TO:<>")
	c.cmd(250, "RCPT TO:<b@example.com>")
	c.cmd(250, "rcpt to: <c@example.com>")
	c.cmd(354, "DATA")
	body := "Subject: dots\r\n\r\n..leading dot\r\n.\r\n...\r\nlast line\r\n"
	stuffed := strings.NewReplacer("\r\n.", "\r\n..").Replace(body)
	fmt.Fprintf(c.conn, "%s.\r\n", stuffed)
	c.expect(250)
	c.cmd(250, "NOOP")
	c.cmd(250, "MAIL FROM:<>")
	c.cmd(250, "RCPT TO:<d@example.com>")
	c.cmd(250, "RSET")
	c.cmd(503, "DATA")
	c.cmd(500, "FOO")
	c.cmd(221, "QUIT")

	msgs := s.WaitFor(t, 1, time.Second)
	if len(msgs) != 1 || s.Count() != 1 {
		t.Fatalf("received %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "a@example.com" || strings.Join(m.To, " ") != "b@example.com c@example.com" {
		t.Errorf("envelope %q -> %q", m.From, m.To)
	}
	if string(m.Data) != body {
		t.Errorf("data = %q, want %q", m.Data, body)
	}
	p, err := m.Parse()
	if err != nil || p.Header.Get("Subject") != "dots" {
		t.Errorf("Parse() = %v, %v", p, err)
	}
}

func TestPipelining(t *testing.T) {
	s := smtpsink.Start(t)
	c := dial(t, s.Addr)
	c.cmd(250, "EHLO client.example")
	const n = 20
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "MAIL FROM:<a@example.com>\r\nRCPT TO:<r%d@example.com>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n", i)
		fmt.Fprintf(&b, "Subject: %d\r\n\r\nbody\r\n.\r\n", i)
	}
	b.WriteString("QUIT\r\n")
	// RFC 2920 has clients wait for 354 before the data; the sink copes
	// with impatient ones too.
	if _, err := c.conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	for range n {
		for _, want := range []int{250, 250, 250, 354, 250} {
			c.expect(want)
		}
	}
	c.expect(221)
	if got := len(s.WaitFor(t, n, time.Second)); got != n {
		t.Errorf("received %d messages, want %d", got, n)
	}
}

func TestLimits(t *testing.T) {
	s := smtpsink.Start(t, smtpsink.WithMaxSize(100))
	c := dial(t, s.Addr)
	c.cmd(250, "HELO client.example")
	c.cmd(552, "MAIL FROM:<a@example.com> SIZE=101")
	c.cmd(250, "MAIL FROM:<a@example.com> SIZE=100")
	c.cmd(250, "RCPT TO:<b@example.com>")
	c.cmd(354, "DATA")
	fmt.Fprintf(c.conn, "%s\r\n.\r\n", strings.Repeat("x", 200))
	c.expect(552)
	c.cmd(250, "MAIL FROM:<a@example.com>")
	c.cmd(250, "RCPT TO:<b@example.com>")
	c.cmd(354, "DATA")
	fmt.Fprintf(c.conn, "small\r\n.\r\n")
	c.expect(250)
	c.cmd(500, strings.Repeat("x", 200<<10))
	c.cmd(250, "NOOP")
	if got := s.Count(); got != 1 {
		t.Errorf("Count() = %d, want 1", got)
	}
}

func TestAuthAndSTARTTLS(t *testing.T) {
	cert, pool := smtpsink.SelfSigned(t)
	s := smtpsink.Start(t, smtpsink.WithSTARTTLS(cert), smtpsink.WithAuth("user", "pass"))
	c := dial(t, s.Addr)
	ext := c.cmd(250, "EHLO client.example")
	if !strings.Contains(ext, "STARTTLS") || strings.Contains(ext, "AUTH") {
		t.Errorf("EHLO before TLS = %q, want STARTTLS and no AUTH", ext)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00user\x00pass"))
	c.cmd(538, "AUTH PLAIN "+plain)
	c.cmd(530, "MAIL FROM:<a@example.com>")
	c.cmd(220, "STARTTLS")
	tc := tls.Client(c.conn, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool})
	c.conn, c.tp = tc, textproto.NewConn(tc)
	c.cmd(503, "MAIL FROM:<a@example.com>") // EHLO is forgotten
	ext = c.cmd(250, "EHLO client.example")
	if strings.Contains(ext, "STARTTLS") || !strings.Contains(ext, "AUTH PLAIN") {
		t.Errorf("EHLO after TLS = %q, want AUTH PLAIN and no STARTTLS", ext)
	}
	c.cmd(503, "STARTTLS")
	c.cmd(535, "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00user\x00wrong")))
	c.cmd(504, "AUTH LOGIN")
	c.cmd(334, "AUTH PLAIN")
	c.cmd(501, "*")
	c.cmd(334, "AUTH PLAIN")
	c.cmd(235, plain)
	c.cmd(503, "AUTH PLAIN "+plain)
	c.cmd(250, "MAIL FROM:<a@example.com>")
	c.cmd(250, "RCPT TO:<b@example.com>")
	c.cmd(354, "DATA")
	fmt.Fprintf(c.conn, "hi\r\n.\r\n")
	c.expect(250)
	m := s.WaitFor(t, 1, time.Second)[0]
	if !m.TLS || m.User != "user" {
		t.Errorf("received TLS %v user %q, want TLS and user", m.TLS, m.User)
	}
}

func TestRejections(t *testing.T) {
	s := smtpsink.Start(t,
		smtpsink.WithRejectRecipient(func(rcpt string) (int, string) {
			if strings.HasPrefix(rcpt, "no") {
				return 550, "5.1.1 no such user"
			}
			return 0, ""
		}),
		smtpsink.WithRejectData(func(r smtpsink.Received) (int, string) {
			if bytes.Contains(r.Data, []byte("spam")) {
				return 554, "5.7.1 spam"
			}
			return 0, ""
		}),
		smtpsink.WithMaxMessagesPerConn(1),
	)
	c := dial(t, s.Addr)
	c.cmd(250, "EHLO client.example")
	c.cmd(250, "MAIL FROM:<a@example.com>")
	c.cmd(550, "RCPT TO:<nobody@example.com>")
	c.cmd(250, "RCPT TO:<b@example.com>")
	c.cmd(354, "DATA")
	fmt.Fprintf(c.conn, "spam\r\n.\r\n")
	c.expect(554)
	c.cmd(250, "MAIL FROM:<a@example.com>")
	c.cmd(250, "RCPT TO:<b@example.com>")
	c.cmd(354, "DATA")
	fmt.Fprintf(c.conn, "ham\r\n.\r\n")
	c.expect(250)
	c.cmd(421, "MAIL FROM:<a@example.com>")
	if _, err := c.tp.ReadLine(); err == nil {
		t.Errorf("connection still open after 421")
	}
	if got := s.Count(); got != 1 {
		t.Errorf("Count() = %d, want 1", got)
	}
}

// TestObserver sees every accepted message, and only those, also when the
// server keeps none.
func TestObserver(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := smtpsink.Start(t, smtpsink.WithDiscard(),
		smtpsink.WithRejectData(func(r smtpsink.Received) (int, string) {
			if bytes.Contains(r.Data, []byte("spam")) {
				return 554, "5.7.1 spam"
			}
			return 0, ""
		}),
		smtpsink.WithObserver(func(r smtpsink.Received) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, string(r.Data))
		}))
	c := dial(t, s.Addr)
	c.cmd(250, "EHLO client.example")
	for _, body := range []string{"ham", "spam", "eggs"} {
		c.cmd(250, "MAIL FROM:<a@example.com>")
		c.cmd(250, "RCPT TO:<b@example.com>")
		c.cmd(354, "DATA")
		fmt.Fprintf(c.conn, "%s\r\n.\r\n", body)
		if body == "spam" {
			c.expect(554)
		} else {
			c.expect(250)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, ""); got != "ham\r\neggs\r\n" || s.Count() != 2 || len(s.Messages()) != 0 {
		t.Errorf("observed %q, Count() = %d, %d kept; want ham and eggs, 2, none kept", got, s.Count(), len(s.Messages()))
	}
}

func TestCloseConnections(t *testing.T) {
	s := smtpsink.Start(t)
	c := dial(t, s.Addr)
	c.cmd(250, "EHLO client.example")
	s.CloseConnections()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.tp.ReadLine(); err == nil {
		t.Fatal("connection still open after CloseConnections")
	}
	c = dial(t, s.Addr)
	c.cmd(250, "EHLO client.example")
}

func TestListenAndClose(t *testing.T) {
	s, err := smtpsink.Listen("127.0.0.1:0", smtpsink.WithIdleTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := smtp.SendMail(s.Addr, nil, "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("SendMail() error = %v", err)
	}
	idle := dial(t, s.Addr) // an open connection must not stop Close
	_ = idle
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close() error = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close() did not return")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() error = %v", err)
	}
	if got := len(s.Messages()); got != 1 {
		t.Errorf("Messages() after Close has %d, want 1", got)
	}
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Errorf("server still accepts connections after Close")
	}
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()                      {}
func (f *fakeTB) Fatalf(string, ...any)        { f.failed = true }
func (f *fakeTB) Cleanup(fn func())            { f.TB.Cleanup(fn) }
func (f *fakeTB) Errorf(string, ...any)        { f.failed = true }
func (f *fakeTB) Logf(format string, a ...any) { f.TB.Logf(format, a...) }

func TestWaitForTimesOut(t *testing.T) {
	s := smtpsink.Start(t)
	tb := &fakeTB{TB: t}
	start := time.Now()
	if got := s.WaitFor(tb, 1, 50*time.Millisecond); got != nil || !tb.failed {
		t.Errorf("WaitFor() on an empty sink = %v, failed %v; want nil and failed", got, tb.failed)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("WaitFor() returned after %v, before its timeout", d)
	}
}

func TestConcurrentClients(t *testing.T) {
	s := smtpsink.Start(t)
	const clients, each = 50, 20
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			c, err := smtp.Dial(s.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := range each {
				if err := c.Mail("a@example.com"); err != nil {
					t.Error(err)
					return
				}
				if err := c.Rcpt(fmt.Sprintf("c%d-%d@example.com", i, j)); err != nil {
					t.Error(err)
					return
				}
				w, err := c.Data()
				if err != nil {
					t.Error(err)
					return
				}
				fmt.Fprintf(w, "Subject: %d %d\r\n\r\nbody\r\n", i, j)
				if err := w.Close(); err != nil {
					t.Error(err)
					return
				}
			}
			c.Quit()
		})
	}
	wg.Wait()
	msgs := s.WaitFor(t, clients*each, 5*time.Second)
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.To[0]] = true
	}
	if len(seen) != clients*each {
		t.Errorf("%d distinct messages, want %d", len(seen), clients*each)
	}
}

// BenchmarkSink measures the sink alone, with a pipelining client on each
// of several connections.
func BenchmarkSink(b *testing.B) {
	s := smtpsink.Start(b, smtpsink.WithDiscard())
	msg := "Subject: bench\r\n\r\n" + strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing.\r\n", 40)
	b.SetBytes(int64(len(msg)))
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := dial(b, s.Addr)
		c.cmd(250, "EHLO bench")
		for pb.Next() {
			fmt.Fprintf(c.conn, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
			c.expect(250)
			c.expect(250)
			c.expect(354)
			fmt.Fprintf(c.conn, "%s.\r\n", msg)
			c.expect(250)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
