// Package smtpsink is an SMTP server on loopback that records what it receives, for tests.
package smtpsink

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Received is one message as the server accepted it.
type Received struct {
	From string   // envelope sender, "" for the null sender
	To   []string // envelope recipients that were accepted
	Data []byte   // the message after dot-unstuffing, line endings as sent
	TLS  bool     // the session was encrypted, by STARTTLS or implicit TLS
	User string   // the AUTH PLAIN user, "" without authentication
}

// Parse parses Data with net/mail. Each call returns a new *mail.Message,
// whose Body can be read once.
func (r Received) Parse() (*netmail.Message, error) {
	return netmail.ReadMessage(bytes.NewReader(r.Data))
}

// Option configures a Server.
type Option func(*options)

type options struct {
	startTLS    *tls.Config
	implicitTLS *tls.Config
	user, pass  string
	rejectRcpt  func(string) (int, string)
	rejectData  func(Received) (int, string)
	observe     func(Received)
	delay       time.Duration
	maxPerConn  int
	maxSize     int
	noUTF8      bool
	discard     bool
	idle        time.Duration
}

// WithSTARTTLS offers STARTTLS with cert.
func WithSTARTTLS(cert tls.Certificate) Option {
	return func(o *options) { o.startTLS = &tls.Config{Certificates: []tls.Certificate{cert}} }
}

// WithTLS makes the server speak TLS from the first byte (implicit TLS, as
// on port 465) with cert.
func WithTLS(cert tls.Certificate) Option {
	return func(o *options) { o.implicitTLS = &tls.Config{Certificates: []tls.Certificate{cert}} }
}

// WithAuth requires AUTH PLAIN as user with pass before MAIL. When
// STARTTLS is offered too, AUTH is offered and accepted only after it.
func WithAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// WithRejectRecipient calls f for each RCPT; a code from 400 to 599 refuses
// the recipient with that code and msg, anything else accepts it. f may be
// called from several goroutines at once.
func WithRejectRecipient(f func(rcpt string) (code int, msg string)) Option {
	return func(o *options) { o.rejectRcpt = f }
}

// WithRejectData calls f with each complete message before accepting it; a
// code from 400 to 599 refuses the message with that code and msg. f may be
// called from several goroutines at once.
func WithRejectData(f func(Received) (code int, msg string)) Option {
	return func(o *options) { o.rejectData = f }
}

// WithObserver calls f with each message the server accepts, before its
// reply, also under WithDiscard: a test that sees many messages can keep
// what it needs of them rather than all of them. f may be called from
// several goroutines at once.
func WithObserver(f func(Received)) Option {
	return func(o *options) { o.observe = f }
}

// WithDelay makes the server wait d before each reply, including the greeting.
func WithDelay(d time.Duration) Option {
	return func(o *options) { o.delay = d }
}

// WithMaxMessagesPerConn makes the server reply 421 and close the connection
// at the next MAIL once n messages have been accepted on it, as some
// providers do.
func WithMaxMessagesPerConn(n int) Option {
	return func(o *options) { o.maxPerConn = n }
}

// WithMaxSize sets the largest message accepted, in octets (advertised with
// SIZE; default 32 MiB). Larger messages are refused with 552.
func WithMaxSize(n int) Option {
	return func(o *options) { o.maxSize = n }
}

// WithoutSMTPUTF8 stops the server offering SMTPUTF8.
func WithoutSMTPUTF8() Option {
	return func(o *options) { o.noUTF8 = true }
}

// WithDiscard makes the server count messages without keeping them, for
// benchmarks: Messages and WaitFor return nothing, Count counts.
func WithDiscard() Option {
	return func(o *options) { o.discard = true }
}

// WithIdleTimeout closes a connection on which nothing arrives for d
// (default 5 minutes).
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) { o.idle = d }
}

// Server is a running sink.
type Server struct {
	Addr string // host:port it listens on

	ln net.Listener
	o  options

	mu      sync.Mutex
	msgs    []Received
	count   int
	changed chan struct{} // closed and replaced whenever count grows
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Start starts a server on 127.0.0.1 with a free port and stops it when
// the test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Listen("127.0.0.1:0", opts...)
	if err != nil {
		tb.Fatalf("smtpsink: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Listen starts a server on addr, for use outside tests; Close stops it.
func Listen(addr string, opts ...Option) (*Server, error) {
	o := options{maxSize: 32 << 20, idle: 5 * time.Minute}
	for _, f := range opts {
		f(&o)
	}
	if o.startTLS != nil && o.implicitTLS != nil {
		return nil, errors.New("smtpsink: WithSTARTTLS and WithTLS are exclusive")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtpsink: %w", err)
	}
	s := &Server{
		Addr:    ln.Addr().String(),
		ln:      ln,
		o:       o,
		changed: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Close stops listening, drops every connection and waits for their
// goroutines to end. The messages stay readable.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// CloseConnections drops every client connection without a word, as a
// crashed or restarted server would. The server goes on accepting new ones.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Messages returns the messages received so far, oldest first. The slice
// is a copy; the Data in it must not be modified.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Count returns the number of messages received so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// WaitFor waits until at least n messages have arrived and returns them
// all, or fails tb after timeout.
func (s *Server) WaitFor(tb testing.TB, n int, timeout time.Duration) []Received {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		count, ch := s.count, s.changed
		if count >= n {
			msgs := append([]Received(nil), s.msgs...)
			s.mu.Unlock()
			return msgs
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			tb.Fatalf("smtpsink: %d messages after %v, want %d", count, timeout, n)
			return nil
		}
	}
}

func (s *Server) record(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if !s.o.discard {
		s.msgs = append(s.msgs, r)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) serve() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.session(c)
		}()
	}
}

// errQuit ends a session normally.
var errQuit = errors.New("quit")

// session is the state of one connection.
type session struct {
	s    *Server
	raw  net.Conn
	conn net.Conn // raw, or TLS over it
	r    *bufio.Reader
	w    *bufio.Writer

	tls      bool
	helo     bool
	ehlo     bool
	user     string
	inMail   bool
	from     string
	rcpts    []string
	accepted int          // messages accepted on this connection
	buf      bytes.Buffer // the message being received
	armed    time.Time    // when the read deadline was last pushed back
}

// arm pushes the read deadline back to the idle timeout from now. It does so
// only when a quarter of the timeout has passed since it last did, since
// setting a deadline per line costs more than the rest of the work on it.
func (ss *session) arm() {
	now := time.Now()
	if now.Sub(ss.armed) > ss.s.o.idle/4 {
		ss.raw.SetReadDeadline(now.Add(ss.s.o.idle))
		ss.armed = now
	}
}

func (s *Server) session(c net.Conn) {
	ss := &session{s: s, raw: c, conn: c}
	if s.o.implicitTLS != nil {
		tc := tls.Server(c, s.o.implicitTLS)
		c.SetDeadline(time.Now().Add(s.o.idle))
		if err := tc.Handshake(); err != nil {
			return
		}
		c.SetDeadline(time.Time{})
		ss.conn, ss.tls = tc, true
	}
	ss.r = bufio.NewReaderSize(ss.conn, 64<<10)
	ss.w = bufio.NewWriterSize(ss.conn, 4<<10)
	ss.reply(220, "smtpsink ESMTP ready")
	for {
		line, err := ss.readLine()
		if errors.Is(err, bufio.ErrBufferFull) {
			// Skip the rest of the line rather than hang up on the client
			// while it is still writing, which would lose the reply.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = ss.r.ReadSlice('\n')
			}
			if err != nil {
				return
			}
			ss.reply(500, "5.5.2 line too long")
			continue
		}
		if err != nil {
			return
		}
		if err := ss.command(line); err != nil {
			ss.w.Flush()
			return
		}
	}
}

func (ss *session) reply(code int, lines ...string) {
	if ss.s.o.delay > 0 {
		ss.w.Flush()
		time.Sleep(ss.s.o.delay)
	}
	if len(lines) == 0 {
		lines = []string{""}
	}
	c := strconv.Itoa(code)
	for i, l := range lines {
		ss.w.WriteString(c)
		if i < len(lines)-1 {
			ss.w.WriteByte('-')
		} else {
			ss.w.WriteByte(' ')
		}
		ss.w.WriteString(l)
		ss.w.WriteString("\r\n")
	}
}

// readLine returns the next line without its line ending. It flushes the
// replies first unless a whole further command is already buffered, which
// answers pipelined commands in one write without ever leaving a client
// waiting.
func (ss *session) readLine() ([]byte, error) {
	if n := ss.r.Buffered(); n == 0 || !hasLine(ss.r, n) {
		if err := ss.w.Flush(); err != nil {
			return nil, err
		}
	}
	ss.arm()
	line, err := ss.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	return line, nil
}

func hasLine(r *bufio.Reader, n int) bool {
	b, _ := r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

func (ss *session) command(line []byte) error {
	verb, arg, _ := strings.Cut(string(line), " ")
	verb = strings.ToUpper(verb)
	o := &ss.s.o
	switch verb {
	case "EHLO", "HELO":
		if arg == "" {
			ss.reply(501, "5.5.4 "+verb+" needs a domain")
			return nil
		}
		ss.helo, ss.ehlo = true, verb == "EHLO"
		ss.resetTx()
		if !ss.ehlo {
			ss.reply(250, "smtpsink")
			return nil
		}
		ext := []string{"smtpsink greets " + arg, "PIPELINING", "SIZE " + strconv.Itoa(o.maxSize), "8BITMIME", "ENHANCEDSTATUSCODES"}
		if !o.noUTF8 {
			ext = append(ext, "SMTPUTF8")
		}
		if o.startTLS != nil && !ss.tls {
			ext = append(ext, "STARTTLS")
		}
		if o.user != "" && ss.authAllowed() {
			ext = append(ext, "AUTH PLAIN")
		}
		ss.reply(250, ext...)
	case "STARTTLS":
		switch {
		case o.startTLS == nil:
			ss.reply(502, "5.5.1 STARTTLS not offered")
		case ss.tls:
			ss.reply(503, "5.5.1 TLS already active")
		case arg != "":
			ss.reply(501, "5.5.4 STARTTLS takes no argument")
		default:
			ss.reply(220, "2.0.0 ready to start TLS")
			if err := ss.w.Flush(); err != nil {
				return err
			}
			tc := tls.Server(ss.raw, o.startTLS)
			ss.raw.SetDeadline(time.Now().Add(o.idle))
			ss.armed = time.Time{}
			if err := tc.Handshake(); err != nil {
				return err
			}
			ss.raw.SetDeadline(time.Time{})
			// RFC 3207: forget everything learnt before TLS, including
			// any plain text the client sent after STARTTLS.
			ss.conn, ss.tls = tc, true
			ss.r.Reset(tc)
			ss.w.Reset(tc)
			ss.helo, ss.ehlo, ss.user = false, false, ""
			ss.resetTx()
		}
	case "AUTH":
		ss.auth(arg)
	case "MAIL":
		switch {
		case !ss.helo:
			ss.reply(503, "5.5.1 say EHLO first")
		case o.user != "" && ss.user == "":
			ss.reply(530, "5.7.0 authentication required")
		case ss.inMail:
			ss.reply(503, "5.5.1 nested MAIL command")
		case o.maxPerConn > 0 && ss.accepted >= o.maxPerConn:
			ss.reply(421, "4.7.0 too many messages on this connection, closing")
			return errQuit
		default:
			from, params, ok := path(arg, "FROM:")
			if !ok {
				ss.reply(501, "5.5.4 syntax: MAIL FROM:<address>")
				return nil
			}
			for _, p := range strings.Fields(params) {
				k, v, _ := strings.Cut(p, "=")
				if strings.EqualFold(k, "SIZE") {
					if n, err := strconv.Atoi(v); err == nil && n > o.maxSize {
						ss.reply(552, "5.3.4 message too big")
						return nil
					}
				}
			}
			ss.inMail, ss.from = true, from
			ss.reply(250, "2.1.0 ok")
		}
	case "RCPT":
		switch {
		case !ss.inMail:
			ss.reply(503, "5.5.1 need MAIL first")
		case len(ss.rcpts) >= 1000:
			ss.reply(452, "4.5.3 too many recipients")
		default:
			to, _, ok := path(arg, "TO:")
			if !ok || to == "" {
				ss.reply(501, "5.5.4 syntax: RCPT TO:<address>")
				return nil
			}
			if o.rejectRcpt != nil {
				if code, msg := o.rejectRcpt(to); code >= 400 && code < 600 {
					ss.reply(code, msg)
					return nil
				}
			}
			ss.rcpts = append(ss.rcpts, to)
			ss.reply(250, "2.1.5 ok")
		}
	case "DATA":
		switch {
		case !ss.inMail:
			ss.reply(503, "5.5.1 need MAIL first")
		case len(ss.rcpts) == 0:
			ss.reply(554, "5.5.1 no valid recipients")
		default:
			ss.reply(354, "end data with <CR><LF>.<CR><LF>")
			return ss.data()
		}
	case "RSET":
		ss.resetTx()
		ss.reply(250, "2.0.0 ok")
	case "NOOP":
		ss.reply(250, "2.0.0 ok")
	case "VRFY":
		ss.reply(252, "2.5.0 cannot verify, will accept")
	case "HELP":
		ss.reply(214, "2.0.0 see RFC 5321")
	case "QUIT":
		ss.reply(221, "2.0.0 bye")
		return errQuit
	default:
		ss.reply(500, "5.5.2 command not recognised")
	}
	return nil
}

// authAllowed reports whether AUTH may happen now: not before STARTTLS
// when the server offers it.
func (ss *session) authAllowed() bool {
	return ss.s.o.startTLS == nil || ss.tls
}

func (ss *session) auth(arg string) {
	o := &ss.s.o
	mech, initial, _ := strings.Cut(arg, " ")
	switch {
	case o.user == "":
		ss.reply(502, "5.5.1 AUTH not offered")
		return
	case !ss.helo:
		ss.reply(503, "5.5.1 say EHLO first")
		return
	case ss.user != "":
		ss.reply(503, "5.5.1 already authenticated")
		return
	case ss.inMail:
		ss.reply(503, "5.5.1 AUTH not allowed during a mail transaction")
		return
	case !ss.authAllowed():
		ss.reply(538, "5.7.11 encryption required for AUTH")
		return
	case !strings.EqualFold(mech, "PLAIN"):
		ss.reply(504, "5.5.4 only AUTH PLAIN")
		return
	}
	if initial == "" {
		ss.reply(334, "")
		line, err := ss.readLine()
		if err != nil {
			return
		}
		initial = string(line)
	}
	if initial == "*" {
		ss.reply(501, "5.0.0 AUTH cancelled")
		return
	}
	b, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		ss.reply(501, "5.5.2 invalid base64")
		return
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 || parts[1] != o.user || parts[2] != o.pass {
		ss.reply(535, "5.7.8 authentication credentials invalid")
		return
	}
	ss.user = parts[1]
	ss.reply(235, "2.7.0 authentication successful")
}

func (ss *session) resetTx() {
	ss.inMail, ss.from, ss.rcpts = false, "", nil
}

// path parses "FROM:<addr> params" or "TO:<addr> params" leniently: the
// prefix in any case, optional space after the colon, and the brackets.
func path(arg, prefix string) (addr, params string, ok bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", "", false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if strings.HasPrefix(rest, "<") {
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return "", "", false
		}
		return rest[1:end], strings.TrimSpace(rest[end+1:]), true
	}
	addr, params, _ = strings.Cut(rest, " ")
	return addr, params, addr != ""
}

// data reads the message up to the line holding a single dot, undoing dot
// stuffing, and answers it.
func (ss *session) data() error {
	o := &ss.s.o
	if err := ss.w.Flush(); err != nil {
		return err
	}
	buf := &ss.buf
	buf.Reset()
	tooBig := false
	lineStart := true
	for {
		ss.arm()
		chunk, err := ss.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		full := err == nil
		if lineStart && len(chunk) > 0 && chunk[0] == '.' {
			if full && (len(chunk) == 2 || len(chunk) == 3 && chunk[1] == '\r') {
				break
			}
			chunk = chunk[1:]
		}
		lineStart = full
		if buf.Len()+len(chunk) > o.maxSize {
			tooBig = true
			buf.Reset()
		}
		if !tooBig {
			buf.Write(chunk)
		}
	}
	defer ss.resetTx()
	if tooBig {
		ss.reply(552, "5.3.4 message too big")
		return nil
	}
	r := Received{From: ss.from, To: ss.rcpts, TLS: ss.tls, User: ss.user}
	if !o.discard || o.rejectData != nil || o.observe != nil {
		r.Data = bytes.Clone(buf.Bytes())
	}
	if o.rejectData != nil {
		if code, msg := o.rejectData(r); code >= 400 && code < 600 {
			ss.reply(code, msg)
			return nil
		}
	}
	ss.accepted++
	ss.s.record(r)
	if o.observe != nil {
		o.observe(r)
	}
	ss.reply(250, "2.0.0 ok: queued")
	return nil
}
