package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// SMTPConfig says how a Sender reaches its SMTP server. The zero values of
// the optional fields are usable defaults.
type SMTPConfig struct {
	Host string
	Port int // default 587 for "starttls", 465 for "tls", 25 for "none"

	// TLS is "starttls" (the default): upgrade with STARTTLS and refuse to
	// continue, let alone authenticate, if the server does not offer it;
	// "tls": implicit TLS from the first byte, usually on port 465; or
	// "none": plain text, allowed only when Host is a loopback address or
	// "localhost", for tests and local relays.
	TLS string

	// Username and Password, when Username is set, are sent with AUTH PLAIN
	// (net/smtp.PlainAuth), which the server must offer. With TLS "none",
	// net/smtp sends them only to "localhost", "127.0.0.1" and "::1".
	Username, Password string

	HeloName    string        // name sent with EHLO; default the host name, else "localhost"
	Timeout     time.Duration // limit on dialling and on each command and reply; default 30s
	RootCAs     *x509.CertPool
	Connections int // connections kept open and used in parallel; default 1
}

// Sender delivers composed messages over SMTP. It keeps up to
// cfg.Connections connections open between messages and sends on them in
// parallel; Send is safe for concurrent use. A connection that fails is
// closed and replaced by a new one on the next Send; a message that fails on
// its first command over a reused connection, as happens when the server
// closed it while idle, is retried once on a fresh connection.
type Sender struct {
	cfg   SMTPConfig
	addr  string
	tls   *tls.Config
	auth  smtp.Auth
	slots chan *conn // one entry per allowed connection; nil when not yet dialled
	done  chan struct{}
	once  sync.Once
}

// NewSender checks cfg and returns a Sender. It does not connect: the first
// Send does.
func NewSender(cfg SMTPConfig) (*Sender, error) {
	if cfg.Host == "" || strings.ContainsAny(cfg.Host, " \t\r\n\x00") {
		return nil, errors.New("mail: smtp host is empty or invalid")
	}
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	defaultPort := 0
	switch cfg.TLS {
	case "starttls":
		defaultPort = 587
	case "tls":
		defaultPort = 465
	case "none":
		defaultPort = 25
		if !isLoopback(cfg.Host) {
			return nil, fmt.Errorf("mail: smtp tls %q is allowed only for loopback hosts, not %q", cfg.TLS, cfg.Host)
		}
	default:
		return nil, fmt.Errorf("mail: smtp tls must be starttls, tls or none, not %q", cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = defaultPort
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("mail: smtp port %d out of range", cfg.Port)
	}
	if cfg.Username == "" && cfg.Password != "" {
		return nil, errors.New("mail: smtp password set without a username")
	}
	if cfg.HeloName == "" {
		cfg.HeloName = "localhost"
		if h, err := os.Hostname(); err == nil && validHelo(h) {
			cfg.HeloName = h
		}
	}
	if !validHelo(cfg.HeloName) {
		return nil, fmt.Errorf("mail: smtp helo name %q is invalid", cfg.HeloName)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("mail: smtp timeout is negative")
	}
	if cfg.Connections == 0 {
		cfg.Connections = 1
	}
	if cfg.Connections < 0 || cfg.Connections > 1000 {
		return nil, fmt.Errorf("mail: smtp connections %d out of range", cfg.Connections)
	}
	s := &Sender{
		cfg:   cfg,
		addr:  net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		slots: make(chan *conn, cfg.Connections),
		done:  make(chan struct{}),
	}
	if cfg.TLS != "none" {
		s.tls = &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	if cfg.Username != "" {
		s.auth = smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host)
	}
	for range cfg.Connections {
		s.slots <- nil
	}
	return s, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func validHelo(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Send delivers msg, a message as Compose returns it, from the envelope
// sender from (empty for the null sender "<>") to the envelope recipients
// to. Delivery is all or nothing: if the server refuses any recipient the
// transaction is abandoned and the refusal returned.
//
// Every error is a *SendError; IsPermanent tells whether retrying can
// help. After ctx is done Send returns promptly with a temporary error that
// wraps ctx.Err(). If the connection breaks after the whole message has
// been sent but before the server's reply, the server may have accepted it,
// so a retry can deliver it twice.
func (s *Sender) Send(ctx context.Context, from string, to []string, msg []byte) error {
	if err := checkEnvelope(from, to); err != nil {
		return err
	}
	var c *conn
	select {
	case c = <-s.slots:
	case <-s.done:
		return &SendError{Op: "closed", Msg: ErrClosed.Error(), Err: ErrClosed}
	case <-ctx.Done():
		return &SendError{Op: "wait", Msg: ctx.Err().Error(), Err: ctx.Err()}
	}
	select {
	case <-s.done:
		// Close is draining the slots; hand this one to it.
		s.slots <- c
		return &SendError{Op: "closed", Msg: ErrClosed.Error(), Err: ErrClosed}
	default:
	}
	c, err := s.send(ctx, c, from, to, msg)
	s.slots <- c
	return err
}

// send runs one transaction on c, dialling if c is nil, and returns the
// connection to keep (nil if it was closed) and the error.
func (s *Sender) send(ctx context.Context, c *conn, from string, to []string, msg []byte) (*conn, error) {
	for attempt := 0; ; attempt++ {
		reused := c != nil
		if c == nil {
			var err error
			if c, err = s.dial(ctx); err != nil {
				return nil, err
			}
		}
		if !c.utf8 && (!isASCII(from) || !allASCII(to)) {
			return c, &SendError{Op: "mail", Permanent: true, Msg: "server does not offer SMTPUTF8, needed for a non-ASCII address"}
		}
		stop := c.watch(ctx)
		err := c.transact(from, to, msg)
		stopped := stop()
		if err == nil {
			return c, nil
		}
		se := classify(err)
		if !stopped && ctx.Err() != nil {
			// The context broke the connection; report why.
			se = &SendError{Op: se.Op, Msg: ctx.Err().Error(), Err: ctx.Err()}
		}
		if !stopped || se.Code == 0 || se.Code == 421 {
			c.close()
			c = nil
			// A reused connection that fails was most likely closed by the
			// server while idle or by a restart. Unless the whole message
			// had gone, nothing can have been accepted, so it can go again,
			// once, on a new connection.
			var oe *opError
			sent := errors.As(err, &oe) && oe.sent
			if reused && !sent && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return nil, se
		}
		// The server refused the message but the connection is fine.
		c.setDeadline(time.Now().Add(s.cfg.Timeout))
		if c.client.Reset() != nil {
			c.close()
			c = nil
		}
		return c, se
	}
}

func checkEnvelope(from string, to []string) error {
	bad := func(s string) bool {
		if len(s) > MaxAddrLen || !utf8.ValidString(s) {
			return true
		}
		for _, r := range s {
			if r <= ' ' || r == '<' || r == '>' || isControl(r) {
				return true
			}
		}
		return false
	}
	if bad(from) {
		return &SendError{Op: "envelope", Permanent: true, Msg: "invalid envelope sender"}
	}
	if len(to) == 0 {
		return &SendError{Op: "envelope", Permanent: true, Msg: "no recipients"}
	}
	for _, r := range to {
		if r == "" || bad(r) {
			return &SendError{Op: "envelope", Permanent: true, Msg: "invalid envelope recipient"}
		}
	}
	return nil
}

// opError carries the protocol step at which an error happened. sent is
// true once the whole message has gone, so that the server may have
// accepted it although we saw no reply.
type opError struct {
	op   string
	err  error
	sent bool
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// classify turns an error from a step into a *SendError.
func classify(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	op := "send"
	var oe *opError
	if errors.As(err, &oe) {
		op = oe.op
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		// 530 (authentication required) refuses every message alike: it is
		// our configuration that is wrong, not this message.
		message := (op == "mail" || op == "rcpt" || op == "data") && te.Code != 530
		return &SendError{Op: op, Permanent: message && te.Code >= 500 && te.Code < 600, Code: te.Code, Msg: te.Msg, Err: err}
	}
	msg := err.Error()
	if oe != nil {
		msg = oe.err.Error()
	}
	return &SendError{Op: op, Msg: msg, Err: err}
}

// Close closes the idle connections, politely with QUIT, and makes later
// Sends fail. It waits for Sends in progress to finish.
func (s *Sender) Close() error {
	s.once.Do(func() {
		close(s.done)
		for range s.cfg.Connections {
			if c := <-s.slots; c != nil {
				c.setDeadline(time.Now().Add(min(s.cfg.Timeout, 5*time.Second)))
				c.client.Quit()
				c.close()
			}
		}
	})
	return nil
}

// conn is one SMTP connection.
type conn struct {
	s      *Sender
	raw    net.Conn
	client *smtp.Client
	utf8   bool // server offers SMTPUTF8

	mu        sync.Mutex // guards cancelled and deadline changes against watch
	cancelled bool
}

func (s *Sender) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: s.cfg.Timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, classify(&opError{op: "dial", err: err})
	}
	c := &conn{s: s, raw: raw}
	stop := c.watch(ctx)
	err = c.handshake(ctx)
	if !stop() && ctx.Err() != nil {
		err = &opError{op: "dial", err: ctx.Err()}
	}
	if err != nil {
		c.close()
		se := classify(err)
		// Only the message steps can fail permanently.
		se.Permanent = false
		return nil, se
	}
	return c, nil
}

// handshake runs the greeting, EHLO, TLS and AUTH on a new connection.
func (c *conn) handshake(ctx context.Context) error {
	cfg := &c.s.cfg
	nc := c.raw
	c.setDeadline(time.Now().Add(cfg.Timeout))
	if cfg.TLS == "tls" {
		tc := tls.Client(c.raw, c.s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return &opError{op: "tls", err: err}
		}
		nc = tc
	}
	c.setDeadline(time.Now().Add(cfg.Timeout))
	client, err := smtp.NewClient(nc, cfg.Host)
	if err != nil {
		return &opError{op: "greeting", err: err}
	}
	c.client = client
	c.setDeadline(time.Now().Add(cfg.Timeout))
	if err := client.Hello(cfg.HeloName); err != nil {
		return &opError{op: "hello", err: err}
	}
	if cfg.TLS == "starttls" {
		if ok, _ := client.Extension("STARTTLS"); !ok {
			return &opError{op: "starttls", err: errors.New("server does not offer STARTTLS")}
		}
		c.setDeadline(time.Now().Add(cfg.Timeout))
		if err := client.StartTLS(c.s.tls); err != nil {
			return &opError{op: "starttls", err: err}
		}
	}
	if c.s.auth != nil {
		ok, mechs := client.Extension("AUTH")
		if !ok || !hasWord(mechs, "PLAIN") {
			return &opError{op: "auth", err: errors.New("server does not offer AUTH PLAIN")}
		}
		c.setDeadline(time.Now().Add(cfg.Timeout))
		if err := client.Auth(c.s.auth); err != nil {
			return &opError{op: "auth", err: err}
		}
	}
	c.utf8, _ = client.Extension("SMTPUTF8")
	return nil
}

func hasWord(list, w string) bool {
	for f := range strings.FieldsSeq(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// transact runs MAIL, RCPT and DATA.
func (c *conn) transact(from string, to []string, msg []byte) error {
	timeout := c.s.cfg.Timeout
	c.setDeadline(time.Now().Add(timeout))
	if err := c.client.Mail(from); err != nil {
		return &opError{op: "mail", err: err}
	}
	for _, r := range to {
		c.setDeadline(time.Now().Add(timeout))
		if err := c.client.Rcpt(r); err != nil {
			return &opError{op: "rcpt", err: err}
		}
	}
	c.setDeadline(time.Now().Add(timeout))
	w, err := c.client.Data()
	if err != nil {
		return &opError{op: "data", err: err}
	}
	// The deadline is per chunk so that a large message on a slow link is
	// limited by progress, not by its size.
	for p := msg; len(p) > 0; {
		n := min(len(p), 64<<10)
		c.setDeadline(time.Now().Add(timeout))
		if _, err := w.Write(p[:n]); err != nil {
			return &opError{op: "data", err: err}
		}
		p = p[n:]
	}
	c.setDeadline(time.Now().Add(timeout))
	if err := w.Close(); err != nil {
		return &opError{"data", err, true}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}

// setDeadline sets the deadline for the next I/O, unless the context has
// already cut the connection off.
func (c *conn) setDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cancelled {
		c.raw.SetDeadline(t)
	}
}

// watch cuts the connection's I/O short when ctx is done, until the
// returned stop is called. stop reports whether it stopped the watch before
// ctx cut anything; if not, the connection's state is unknown and it must be
// closed. Setting the deadline on the underlying connection also limits a
// TLS connection over it.
func (c *conn) watch(ctx context.Context) (stop func() bool) {
	c.mu.Lock()
	c.cancelled = false
	c.mu.Unlock()
	return context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cancelled = true
		c.raw.SetDeadline(time.Unix(1, 0))
		c.mu.Unlock()
	})
}

func (c *conn) close() {
	c.raw.Close()
}
