package mail_test

import (
	"bytes"
	"errors"
	"maps"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/mail"
)

// FuzzCompose checks that whatever the input, Compose either refuses it or
// writes a message whose header holds exactly the fields it should, with
// the addresses, subject and bodies it was given.
func FuzzCompose(f *testing.F) {
	f.Add("CA", "ca@example.com", "Alice", "alice@example.com", "Hello", "Body", "", "X-Batch", "1", "")
	f.Add("CA", "ca@example.com", "Alice\r\nBcc: evil@x", "alice@example.com", "Hi\r\nBcc: evil@x", "Body", "<p>", "X-A", "b\r\nBcc: evil@x", "a.crt")
	f.Add("Jürgen Groß", "ca@example.de", "\"; Bcc: evil@x", "alice@example.com\nX: y", "=?utf-8?q?=0D=0A?=", "a\rb\nc", "", "Bcc", "evil@x", "Zertifikat für dich.p12")
	f.Add("   ", "ca@[192.0.2.1]", "a,b <c>", "üser@exämple.com", strings.Repeat("word ", 300), ".\r\n.\r\n", "x", "X-Long", strings.Repeat("v ", 900), "")
	f.Add(`\"`, "a@b", "=?", "x@y", "  two  spaces  ", "\x00", "", "", "", "\u202e.exe")
	f.Fuzz(func(t *testing.T, fromName, fromAddr, toName, toAddr, subject, text, html, hName, hValue, filename string) {
		m := &mail.Message{
			From:    mail.Address{Name: fromName, Addr: fromAddr},
			To:      []mail.Address{{Name: toName, Addr: toAddr}, {Name: toName, Addr: "second@example.com"}},
			Subject: subject,
			Text:    text,
			HTML:    html,
		}
		if hName != "" {
			m.Headers = map[string]string{hName: hValue}
		}
		if filename != "" {
			m.Attachments = []mail.Attachment{{Filename: filename, Data: []byte(text)}}
		}
		raw, id, err := mail.Compose(m, now)
		if err != nil {
			var ce *mail.ComposeError
			if !errors.As(err, &ce) {
				t.Fatalf("Compose() error = %v, want *ComposeError", err)
			}
			return
		}
		checkWellFormed(t, raw)
		p, err := parse(raw)
		if err != nil {
			t.Fatalf("composed message does not parse: %v\n%q", err, raw)
		}

		want := map[string]bool{"Date": true, "From": true, "To": true, "Subject": true, "Message-Id": true, "Mime-Version": true, "Content-Type": true}
		if html == "" && filename == "" {
			want["Content-Transfer-Encoding"] = true
		}
		if hName != "" {
			want[textproto.CanonicalMIMEHeaderKey(hName)] = true
		}
		got := slices.Sorted(maps.Keys(p.Header))
		if !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
			t.Fatalf("header fields = %q, want %q\n%q", got, slices.Sorted(maps.Keys(want)), raw)
		}
		for k, v := range p.Header {
			if len(v) != 1 {
				t.Fatalf("header %s appears %d times\n%q", k, len(v), raw)
			}
		}
		if hName != "" {
			if got := p.Header.Get(hName); got != strings.Trim(hValue, " ") {
				t.Errorf("%s = %q, want %q", hName, got, hValue)
			}
		}
		if p.Header.Get("Message-Id") != id {
			t.Errorf("Message-ID = %q, want %q", p.Header.Get("Message-Id"), id)
		}
		checkAddrs(t, p.Header, "From", []mail.Address{m.From})
		checkAddrs(t, p.Header, "To", m.To)
		if got := decodeHeader(t, p.Header, "Subject"); got != subject {
			t.Errorf("Subject = %q, want %q", got, subject)
		}
		if p.Text != wantText(m) {
			t.Errorf("text = %q, want %q", p.Text, wantText(m))
		}
		if p.HTML != crlf(html) {
			t.Errorf("html = %q, want %q", p.HTML, crlf(html))
		}
		if filename != "" {
			if len(p.Attachments) != 1 || p.Attachments[0].Filename != filename || !bytes.Equal(p.Attachments[0].Data, []byte(text)) {
				t.Errorf("attachments = %+v, want %q", p.Attachments, filename)
			}
		}
	})
}
