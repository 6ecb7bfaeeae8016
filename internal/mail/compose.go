// Package mail composes email messages and delivers them over SMTP.
package mail

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Address is a mailbox with an optional display name.
type Address struct {
	Name string // display name, any Unicode text without control characters
	Addr string // bare addr-spec, such as "alice@example.com"
}

// Attachment is a file attached to a message.
type Attachment struct {
	Filename    string // as the recipient will see it; may be non-ASCII
	ContentType string // a media type such as "application/pkix-cert"; default application/octet-stream
	Data        []byte
}

// Message is an email before it is rendered by Compose.
type Message struct {
	From        Address
	To          []Address
	ReplyTo     *Address
	Subject     string
	Text        string            // plain text body, required
	HTML        string            // optional HTML alternative to Text
	Attachments []Attachment      // optional
	Headers     map[string]string // extra headers, such as "Auto-Submitted": "auto-generated"
	MessageID   string            // "<left@right>"; Compose makes one when empty
}

// Limits on what Compose accepts, in octets of UTF-8.
const (
	MaxNameLen        = 256  // a display name
	MaxAddrLen        = 254  // an address, as RFC 5321 allows
	MaxSubjectLen     = 2000 // a subject
	MaxHeaderValueLen = 2000 // the value of an extra header
	MaxFilenameLen    = 255  // an attachment's file name
	maxMessageIDLen   = 250
	maxLineLen        = 998 // RFC 5322 section 2.1.1
)

// Compose renders m as an RFC 5322 message and returns it with its
// Message-ID, in angle brackets as it appears in the header.
//
// The message has Date (now), From, Reply-To when set, To, Subject,
// Message-ID, the extra Headers in name order, and MIME-Version. Its body is
// Text alone, or Text and HTML as multipart/alternative, wrapped in
// multipart/mixed when there are Attachments. Bodies are UTF-8 in
// quoted-printable with CRLF line endings (whatever endings Text and HTML
// used; a Text sent alone also gains a final CRLF if it lacks one);
// attachments are base64. Every line ends in CRLF and is at most 998
// octets. Non-ASCII subjects and display names become RFC 2047 encoded-words,
// and long header fields are folded. When m.MessageID is empty Compose makes
// one from 128 random bits and the domain of From; m is not modified. The
// output depends only on m, now and, for a generated Message-ID, the random
// bits.
//
// Compose refuses, with a *ComposeError, any message in which some input
// could end up outside its field: control characters (CR, LF, NUL and the
// rest) in any address, name, subject, file name or header; addresses that
// are not bare addr-specs; extra headers that are not printable ASCII or
// that name a header Compose writes itself. Addresses may be non-ASCII
// (RFC 6532); such messages need a server with SMTPUTF8.
func Compose(m *Message, now time.Time) ([]byte, string, error) {
	from, err := renderAddress("From", m.From)
	if err != nil {
		return nil, "", err
	}
	if len(m.To) == 0 {
		return nil, "", &ComposeError{"To", Missing}
	}
	to := make([][]string, len(m.To))
	for i, a := range m.To {
		if to[i], err = renderAddress("To["+strconv.Itoa(i)+"]", a); err != nil {
			return nil, "", err
		}
	}
	var replyTo []string
	if m.ReplyTo != nil {
		if replyTo, err = renderAddress("Reply-To", *m.ReplyTo); err != nil {
			return nil, "", err
		}
	}
	subject, err := renderText("Subject", m.Subject, MaxSubjectLen)
	if err != nil {
		return nil, "", err
	}
	extra, err := renderExtraHeaders(m.Headers)
	if err != nil {
		return nil, "", err
	}
	if m.Text == "" {
		return nil, "", &ComposeError{"Text", Missing}
	}
	if !utf8.ValidString(m.Text) {
		return nil, "", &ComposeError{"Text", InvalidUTF8}
	}
	if !utf8.ValidString(m.HTML) {
		return nil, "", &ComposeError{"HTML", InvalidUTF8}
	}
	atts := make([]renderedAttachment, len(m.Attachments))
	for i, a := range m.Attachments {
		if atts[i], err = renderAttachment(i, a); err != nil {
			return nil, "", err
		}
	}
	id := m.MessageID
	if id == "" {
		id = newMessageID(m.From.Addr)
	} else if !validMessageID(id) {
		return nil, "", &ComposeError{"MessageID", InvalidMessageID}
	}

	var b bytes.Buffer
	h := headerWriter{b: &b}
	h.unstructured("Date", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	h.tokens("From", from)
	if replyTo != nil {
		h.tokens("Reply-To", replyTo)
	}
	h.addressList("To", to)
	h.tokens("Subject", subject)
	h.unstructured("Message-ID", id)
	for _, e := range extra {
		h.unstructured(e.name, e.value)
	}
	h.unstructured("MIME-Version", "1.0")

	// The boundaries hold "=_", which can occur neither in quoted-printable
	// nor in base64, so no body line can be mistaken for one. Deriving them
	// from the content keeps Compose deterministic, for golden files.
	mixed, alt := boundaries(id, m, atts)
	var ctype string
	switch {
	case len(atts) > 0:
		ctype = mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mixed})
	case m.HTML != "":
		ctype = mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": alt})
	default:
		ctype = "text/plain; charset=utf-8"
	}
	h.unstructured("Content-Type", ctype)
	if len(atts) == 0 && m.HTML == "" {
		h.unstructured("Content-Transfer-Encoding", "quoted-printable")
	}
	if !h.check() {
		return nil, "", errors.New("mail: internal error: header block failed its check")
	}
	b.WriteString("\r\n")

	switch {
	case len(atts) > 0:
		mw := multipart.NewWriter(&b)
		mw.SetBoundary(mixed)
		if m.HTML != "" {
			w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": alt})}})
			writeAlternative(w, alt, m.Text, m.HTML)
		} else {
			w, _ := mw.CreatePart(textPartHeader("text/plain"))
			writeQP(w, m.Text)
		}
		for _, a := range atts {
			w, _ := mw.CreatePart(a.header)
			writeBase64(w, a.data)
		}
		mw.Close()
	case m.HTML != "":
		writeAlternative(&b, alt, m.Text, m.HTML)
	default:
		writeQP(&b, m.Text)
		if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
			b.WriteString("\r\n")
		}
	}

	out := b.Bytes()
	if !linesFit(out) {
		return nil, "", &ComposeError{"Message", TooLong}
	}
	return out, id, nil
}

func textPartHeader(typ string) textproto.MIMEHeader {
	return textproto.MIMEHeader{
		"Content-Type":              {typ + "; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	}
}

func writeAlternative(w io.Writer, boundary, text, html string) {
	mw := multipart.NewWriter(w)
	mw.SetBoundary(boundary)
	p, _ := mw.CreatePart(textPartHeader("text/plain"))
	writeQP(p, text)
	p, _ = mw.CreatePart(textPartHeader("text/html"))
	writeQP(p, html)
	mw.Close()
}

// writeQP writes s in quoted-printable, turning CR, LF and CRLF into CRLF.
// Writes go to a bytes.Buffer or a multipart part over one, which cannot fail.
func writeQP(w io.Writer, s string) {
	qw := quotedprintable.NewWriter(w)
	io.WriteString(qw, s)
	qw.Close()
}

// writeBase64 writes data in base64, in lines of 76 characters.
func writeBase64(w io.Writer, data []byte) {
	const chunk = 57 // 76 characters of base64
	line := make([]byte, 0, 78)
	for len(data) > 0 {
		n := min(chunk, len(data))
		line = base64.StdEncoding.AppendEncode(line[:0], data[:n])
		data = data[n:]
		if len(data) > 0 {
			line = append(line, '\r', '\n')
		}
		w.Write(line)
	}
}

type renderedAttachment struct {
	header textproto.MIMEHeader
	data   []byte
}

func renderAttachment(i int, a Attachment) (renderedAttachment, error) {
	field := "Attachments[" + strconv.Itoa(i) + "]"
	if a.Filename == "" {
		return renderedAttachment{}, &ComposeError{field + ".Filename", Missing}
	}
	if err := checkText(field+".Filename", a.Filename, MaxFilenameLen); err != nil {
		return renderedAttachment{}, err
	}
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	typ, params, err := mime.ParseMediaType(ct)
	if err != nil || strings.HasPrefix(typ, "multipart/") || strings.HasPrefix(typ, "message/") {
		return renderedAttachment{}, &ComposeError{field + ".ContentType", InvalidContentType}
	}
	params["name"] = a.Filename
	ctv := mime.FormatMediaType(typ, params)
	cd := mime.FormatMediaType("attachment", map[string]string{"filename": a.Filename})
	if ctv == "" || cd == "" {
		return renderedAttachment{}, &ComposeError{field + ".ContentType", InvalidContentType}
	}
	return renderedAttachment{
		header: textproto.MIMEHeader{
			"Content-Type":              {ctv},
			"Content-Disposition":       {cd},
			"Content-Transfer-Encoding": {"base64"},
		},
		data: a.Data,
	}, nil
}

func boundaries(id string, m *Message, atts []renderedAttachment) (mixed, alt string) {
	h := sha256.New()
	field := func(s string) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
		io.WriteString(h, s)
	}
	field(id)
	field(m.Subject)
	field(m.Text)
	field(m.HTML)
	for _, a := range atts {
		field(a.header.Get("Content-Type"))
		field(string(a.data))
	}
	sum := hex.EncodeToString(h.Sum(nil)[:12])
	return "=_m" + sum, "=_a" + sum
}

// newMessageID returns "<random@domain>" with the domain of from, or
// "mailca.invalid" when that domain is not a plain ASCII name.
func newMessageID(from string) string {
	var r [16]byte
	rand.Read(r[:])
	left := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(r[:]))
	domain := from[strings.LastIndexByte(from, '@')+1:]
	if !isDotAtom(domain) || len(domain) > maxMessageIDLen-len(left)-3 {
		domain = "mailca.invalid"
	}
	return "<" + left + "@" + domain + ">"
}

func validMessageID(id string) bool {
	if len(id) > maxMessageIDLen || len(id) < 5 || id[0] != '<' || id[len(id)-1] != '>' {
		return false
	}
	left, right, ok := strings.Cut(id[1:len(id)-1], "@")
	return ok && isDotAtom(left) && isDotAtom(right)
}

// isDotAtom reports whether s is an ASCII RFC 5322 dot-atom-text.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !isAtext(c) {
			return false
		}
	}
	return true
}

func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// linesFit reports whether every line of b is at most maxLineLen octets and
// every CR and LF is part of a CRLF.
func linesFit(b []byte) bool {
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			return len(b) <= maxLineLen
		}
		if i > maxLineLen || b[i] != '\r' || i+1 >= len(b) || b[i+1] != '\n' {
			return false
		}
		b = b[i+2:]
	}
	return true
}

type extraHeader struct{ name, value string }

// reserved reports whether canon, a canonical header name, is one that
// Compose writes or one that directs delivery or tracing, which a template
// has no business setting.
func reserved(canon string) bool {
	switch canon {
	case "Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject",
		"Message-Id", "Mime-Version", "Received", "Return-Path":
		return true
	}
	return strings.HasPrefix(canon, "Content-") || strings.HasPrefix(canon, "Resent-")
}

func renderExtraHeaders(hs map[string]string) ([]extraHeader, error) {
	out := make([]extraHeader, 0, len(hs))
	seen := make(map[string]bool, len(hs))
	for name, value := range hs {
		field := "Headers[" + name + "]"
		if !validHeaderName(name) {
			// The name may be hostile, so it stays out of the error.
			return nil, &ComposeError{"Headers", InvalidHeaderName}
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if reserved(canon) {
			return nil, &ComposeError{field, ReservedHeader}
		}
		if seen[canon] {
			return nil, &ComposeError{field, DuplicateHeader}
		}
		seen[canon] = true
		if len(value) > MaxHeaderValueLen {
			return nil, &ComposeError{field, TooLong}
		}
		for i := 0; i < len(value); i++ {
			switch c := value[i]; {
			case c < ' ' || c == 0x7f:
				return nil, &ComposeError{field, ControlCharacter}
			case c > 0x7f:
				return nil, &ComposeError{field, NonASCII}
			}
		}
		out = append(out, extraHeader{name, value})
	}
	slices.SortFunc(out, func(a, b extraHeader) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}
