package mail_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/mail"
)

// parsed is a composed message taken apart by the standard library alone.
type parsed struct {
	Header      netmail.Header
	Text, HTML  string
	Attachments []mail.Attachment
	Structure   []string // media types in the order met
}

func mustParse(t testing.TB, raw []byte) *parsed {
	t.Helper()
	p, err := parse(raw)
	if err != nil {
		t.Fatalf("parsing composed message: %v\n%s", err, raw)
	}
	return p
}

func parse(raw []byte) (*parsed, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	p := &parsed{Header: msg.Header}
	err = p.walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body)
	return p, err
}

func (p *parsed) walk(ctype, cte, disp string, body io.Reader) error {
	typ, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return err
	}
	p.Structure = append(p.Structure, typ)
	if strings.HasPrefix(typ, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart() // decodes quoted-printable itself
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := p.walk(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part.Header.Get("Content-Disposition"), part); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(cte) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if disp != "" {
		_, dparams, err := mime.ParseMediaType(disp)
		if err != nil {
			return err
		}
		p.Attachments = append(p.Attachments, mail.Attachment{Filename: dparams["filename"], ContentType: typ, Data: data})
		return nil
	}
	switch typ {
	case "text/plain":
		p.Text = string(data)
	case "text/html":
		p.HTML = string(data)
	}
	return nil
}

// crlf returns s with every line ending as CRLF, as Compose writes bodies.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// wantText is what a reader decodes from the text part of a message
// composed from m.
func wantText(m *mail.Message) string {
	s := crlf(m.Text)
	if m.HTML == "" && len(m.Attachments) == 0 && !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

func decodeHeader(t testing.TB, h netmail.Header, name string) string {
	t.Helper()
	var dec mime.WordDecoder
	s, err := dec.DecodeHeader(h.Get(name))
	if err != nil {
		t.Fatalf("decoding %s %q: %v", name, h.Get(name), err)
	}
	return s
}
