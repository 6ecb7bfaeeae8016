package mail_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	netmail "net/mail"

	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/mail"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.FixedZone("CET", 3600))

func TestComposeRoundTrip(t *testing.T) {
	cert := bytes.Repeat([]byte{0x30, 0x82, 0x00, 0xff, '\r', '\n', '.'}, 300)
	tests := []struct {
		name      string
		m         mail.Message
		structure []string
	}{
		{
			name: "plain",
			m: mail.Message{
				From:    mail.Address{Name: "Example CA", Addr: "ca@example.com"},
				To:      []mail.Address{{Addr: "alice@example.com"}},
				Subject: "Your certificate",
				Text:    "Hello Alice,\n\nyour certificate is ready.\n",
			},
			structure: []string{"text/plain"},
		},
		{
			name: "unicode",
			m: mail.Message{
				From:    mail.Address{Name: "Zertifizierungsstelle Müller & Söhne", Addr: "ca@example.de"},
				To:      []mail.Address{{Name: "Jürgen Groß", Addr: "juergen@example.de"}, {Name: "山田 太郎", Addr: "taro@example.jp"}, {Name: "O'Brien, Seán \"Jr\"", Addr: "sean@example.ie"}},
				ReplyTo: &mail.Address{Name: "Support", Addr: "support@example.de"},
				Subject: "Ihr Zertifikat für Jürgen Groß – bitte aktivieren ✉",
				Text:    "Grüße\r\n.\r\nline with a dot\nand trailing space   \n",
				Headers: map[string]string{"Auto-Submitted": "auto-generated", "X-Mailca-Batch": "42"},
			},
			structure: []string{"text/plain"},
		},
		{
			name: "html",
			m: mail.Message{
				From:    mail.Address{Addr: "ca@example.com"},
				To:      []mail.Address{{Name: "Bob", Addr: "bob@example.com"}},
				Subject: "=?utf-8?q?not_an_encoded_word?=",
				Text:    "Open https://ca.example.com/a/" + strings.Repeat("x", 200),
				HTML:    "<p>Open <a href=\"https://ca.example.com/a/\">this link</a> – “quoted”</p>",
			},
			structure: []string{"multipart/alternative", "text/plain", "text/html"},
		},
		{
			name: "attachments",
			m: mail.Message{
				From:    mail.Address{Addr: "ca@example.com"},
				To:      []mail.Address{{Addr: "bob@example.com"}},
				Subject: "Certificate issued",
				Text:    "Attached.",
				Attachments: []mail.Attachment{
					{Filename: "bob.crt", ContentType: "application/pkix-cert", Data: cert},
					{Filename: "Zertifikat für Jürgen.p7c", Data: []byte{}},
				},
			},
			structure: []string{"multipart/mixed", "text/plain", "application/pkix-cert", "application/octet-stream"},
		},
		{
			name: "html and attachments",
			m: mail.Message{
				From:        mail.Address{Addr: "ca@example.com"},
				To:          []mail.Address{{Addr: "bob@example.com"}},
				Subject:     strings.Repeat("long subject ", 40),
				Text:        "Attached.",
				HTML:        "<p>Attached.</p>",
				Attachments: []mail.Attachment{{Filename: "chain.pem", ContentType: "application/x-pem-file; charset=us-ascii", Data: []byte("-----BEGIN CERTIFICATE-----\n")}},
			},
			structure: []string{"multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/x-pem-file"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, id, err := mail.Compose(&tt.m, now)
			if err != nil {
				t.Fatalf("Compose() error = %v", err)
			}
			checkWellFormed(t, raw)
			p := mustParse(t, raw)
			h := p.Header

			if got := h.Get("Message-Id"); got != id {
				t.Errorf("Message-ID header = %q, want returned %q", got, id)
			}
			if !strings.HasSuffix(id, "@"+tt.m.From.Addr[strings.LastIndexByte(tt.m.From.Addr, '@')+1:]+">") {
				t.Errorf("Message-ID %q does not use the domain of From", id)
			}
			if d, err := h.Date(); err != nil || !d.Equal(now) {
				t.Errorf("Date = %v, %v, want %v", d, err, now)
			}
			if got := h.Get("Mime-Version"); got != "1.0" {
				t.Errorf("MIME-Version = %q, want 1.0", got)
			}
			checkAddrs(t, h, "From", []mail.Address{tt.m.From})
			checkAddrs(t, h, "To", tt.m.To)
			if tt.m.ReplyTo != nil {
				checkAddrs(t, h, "Reply-To", []mail.Address{*tt.m.ReplyTo})
			}
			if got := decodeHeader(t, h, "Subject"); got != tt.m.Subject {
				t.Errorf("Subject = %q, want %q", got, tt.m.Subject)
			}
			for k, v := range tt.m.Headers {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !slices.Equal(p.Structure, tt.structure) {
				t.Errorf("structure = %q, want %q", p.Structure, tt.structure)
			}
			if want := wantText(&tt.m); p.Text != want {
				t.Errorf("text = %q, want %q", p.Text, want)
			}
			if want := crlf(tt.m.HTML); p.HTML != want {
				t.Errorf("html = %q, want %q", p.HTML, want)
			}
			if len(p.Attachments) != len(tt.m.Attachments) {
				t.Fatalf("%d attachments, want %d", len(p.Attachments), len(tt.m.Attachments))
			}
			for i, a := range p.Attachments {
				w := tt.m.Attachments[i]
				if a.Filename != w.Filename || !bytes.Equal(a.Data, w.Data) {
					t.Errorf("attachment %d = %q (%d bytes), want %q (%d bytes)", i, a.Filename, len(a.Data), w.Filename, len(w.Data))
				}
			}
		})
	}
}

// checkWellFormed checks that every line of raw ends in CRLF, that header
// lines stay within 78 columns where a break was possible, and that no line
// passes 998 octets.
func checkWellFormed(t testing.TB, raw []byte) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) ||
		bytes.Count(raw, []byte("\n")) != bytes.Count(raw, []byte("\r\n")) {
		t.Fatalf("message has a bare CR or LF:\n%q", raw)
	}
	header, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d octets: %.60q...", len(line), line)
		}
	}
	for _, line := range strings.Split(string(header), "\r\n") {
		_, value, ok := strings.Cut(line, ": ")
		if !ok || strings.HasPrefix(line, " ") {
			value = line[1:]
		}
		if len(line) > 78 && strings.Contains(value, " ") && !strings.HasPrefix(line, "Content-") {
			t.Errorf("header line of %d octets could have been folded: %q", len(line), line)
		}
	}
}

func checkAddrs(t testing.TB, h interface {
	AddressList(string) ([]*netmail.Address, error)
}, field string, want []mail.Address) {
	t.Helper()
	got, err := h.AddressList(field)
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s has %d addresses, want %d", field, len(got), len(want))
	}
	for i := range got {
		if got[i].Name != want[i].Name || got[i].Address != want[i].Addr {
			t.Errorf("%s[%d] = %q <%s>, want %q <%s>", field, i, got[i].Name, got[i].Address, want[i].Name, want[i].Addr)
		}
	}
}

func TestComposeGolden(t *testing.T) {
	m := &mail.Message{
		From:      mail.Address{Name: "Example Org CA", Addr: "ca@example.com"},
		To:        []mail.Address{{Name: "Jürgen Groß", Addr: "juergen@example.com"}},
		Subject:   "Ihr S/MIME-Zertifikat ist ausgestellt",
		Text:      "Guten Tag Jürgen,\n\nIhr Zertifikat ist ausgestellt.\n",
		HTML:      "<p>Guten Tag Jürgen,</p>\n<p>Ihr Zertifikat ist ausgestellt.</p>\n",
		Headers:   map[string]string{"Auto-Submitted": "auto-generated"},
		MessageID: "<golden.1@example.com>",
		Attachments: []mail.Attachment{
			{Filename: "juergen.crt", ContentType: "application/pkix-cert", Data: bytes.Repeat([]byte{0x30, 0x82, 0x01}, 40)},
		},
	}
	raw, _, err := mail.Compose(m, now)
	if err != nil {
		t.Fatalf("Compose() error = %v", err)
	}
	golden := filepath.Join("testdata", "issued.eml")
	if *update {
		if err := os.WriteFile(golden, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(raw, want) {
		t.Errorf("Compose() differs from %s (run go test -update if the change is intended):\n%s", golden, raw)
	}
}

func TestComposeMessageID(t *testing.T) {
	m := &mail.Message{From: mail.Address{Addr: "ca@example.com"}, To: []mail.Address{{Addr: "a@example.com"}}, Text: "x"}
	seen := map[string]bool{}
	for range 100 {
		_, id, err := mail.Compose(m, now)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("Compose made Message-ID %s twice", id)
		}
		seen[id] = true
	}
	if m.MessageID != "" {
		t.Errorf("Compose changed m.MessageID to %q", m.MessageID)
	}

	m.From.Addr = "ca@[192.0.2.1]"
	_, id, err := mail.Compose(m, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id, "@mailca.invalid>") {
		t.Errorf("Message-ID for a domain literal = %q, want @mailca.invalid", id)
	}
}

func TestComposeRefuses(t *testing.T) {
	base := func() *mail.Message {
		return &mail.Message{
			From:    mail.Address{Name: "CA", Addr: "ca@example.com"},
			To:      []mail.Address{{Name: "Alice", Addr: "alice@example.com"}},
			Subject: "Hello",
			Text:    "Body",
		}
	}
	long := strings.Repeat("a", mail.MaxNameLen+1)
	tests := []struct {
		name   string
		edit   func(m *mail.Message)
		field  string
		reason mail.Reason
	}{
		{"no from", func(m *mail.Message) { m.From.Addr = "" }, "From", mail.Missing},
		{"no to", func(m *mail.Message) { m.To = nil }, "To", mail.Missing},
		{"no text", func(m *mail.Message) { m.Text = "" }, "Text", mail.Missing},
		{"CRLF Bcc in name", func(m *mail.Message) { m.To[0].Name = "Alice\r\nBcc: evil@x" }, "To[0].Name", mail.ControlCharacter},
		{"LF in name", func(m *mail.Message) { m.From.Name = "CA\nX: y" }, "From.Name", mail.ControlCharacter},
		{"NUL in name", func(m *mail.Message) { m.To[0].Name = "Al\x00ice" }, "To[0].Name", mail.ControlCharacter},
		{"CR in name", func(m *mail.Message) { m.To[0].Name = "Alice\rBcc: evil@x" }, "To[0].Name", mail.ControlCharacter},
		{"NEL in name", func(m *mail.Message) { m.To[0].Name = "Alice\u0085Bcc: evil@x" }, "To[0].Name", mail.ControlCharacter},
		{"line separator in name", func(m *mail.Message) { m.To[0].Name = "Alice\u2028Bcc: evil@x" }, "To[0].Name", mail.ControlCharacter},
		{"bidi override in name", func(m *mail.Message) { m.To[0].Name = "Alice \u202egpj.exe" }, "To[0].Name", mail.ControlCharacter},
		{"tab in name", func(m *mail.Message) { m.To[0].Name = "Al\tice" }, "To[0].Name", mail.ControlCharacter},
		{"long name", func(m *mail.Message) { m.To[0].Name = long }, "To[0].Name", mail.TooLong},
		{"invalid UTF-8 name", func(m *mail.Message) { m.To[0].Name = "M\xfcller" }, "To[0].Name", mail.InvalidUTF8},
		{"CRLF Bcc in subject", func(m *mail.Message) { m.Subject = "Hi\r\nBcc: evil@x" }, "Subject", mail.ControlCharacter},
		{"LF in subject", func(m *mail.Message) { m.Subject = "Hi\nX: y" }, "Subject", mail.ControlCharacter},
		{"NUL in subject", func(m *mail.Message) { m.Subject = "Hi\x00" }, "Subject", mail.ControlCharacter},
		{"long subject", func(m *mail.Message) { m.Subject = strings.Repeat("s", mail.MaxSubjectLen+1) }, "Subject", mail.TooLong},
		{"CRLF Bcc in address", func(m *mail.Message) { m.To[0].Addr = "alice@example.com\r\nBcc: evil@x" }, "To[0]", mail.ControlCharacter},
		{"LF in address", func(m *mail.Message) { m.To[0].Addr = "alice@example.com\nX: y" }, "To[0]", mail.ControlCharacter},
		{"NUL in address", func(m *mail.Message) { m.To[0].Addr = "alice\x00@example.com" }, "To[0]", mail.ControlCharacter},
		{"CRLF in from address", func(m *mail.Message) { m.From.Addr = "ca@example.com\r\nBcc: evil@x" }, "From", mail.ControlCharacter},
		{"CRLF in reply-to", func(m *mail.Message) { m.ReplyTo = &mail.Address{Name: "x\r\nBcc: evil@x", Addr: "r@example.com"} }, "Reply-To.Name", mail.ControlCharacter},
		{"name in address", func(m *mail.Message) { m.To[0].Addr = "Eve <eve@example.com>" }, "To[0]", mail.InvalidAddress},
		{"two addresses", func(m *mail.Message) { m.To[0].Addr = "alice@example.com,evil@x" }, "To[0]", mail.InvalidAddress},
		{"address with comment", func(m *mail.Message) { m.To[0].Addr = "alice@example.com(evil@x)" }, "To[0]", mail.InvalidAddress},
		{"quoted local part", func(m *mail.Message) { m.To[0].Addr = `"a b"@example.com` }, "To[0]", mail.InvalidAddress},
		{"no at", func(m *mail.Message) { m.To[0].Addr = "alice" }, "To[0]", mail.InvalidAddress},
		{"long address", func(m *mail.Message) { m.To[0].Addr = strings.Repeat("a", 250) + "@example.com" }, "To[0]", mail.TooLong},
		{"header name with colon", func(m *mail.Message) { m.Headers = map[string]string{"X-A: b\r\nBcc": "evil@x"} }, "Headers", mail.InvalidHeaderName},
		{"header name with space", func(m *mail.Message) { m.Headers = map[string]string{"X A": "b"} }, "Headers", mail.InvalidHeaderName},
		{"empty header name", func(m *mail.Message) { m.Headers = map[string]string{"": "b"} }, "Headers", mail.InvalidHeaderName},
		{"CRLF in header value", func(m *mail.Message) { m.Headers = map[string]string{"X-A": "b\r\nBcc: evil@x"} }, "Headers[X-A]", mail.ControlCharacter},
		{"non-ASCII header value", func(m *mail.Message) { m.Headers = map[string]string{"X-A": "Jürgen"} }, "Headers[X-A]", mail.NonASCII},
		{"Bcc header", func(m *mail.Message) { m.Headers = map[string]string{"bcc": "evil@x"} }, "Headers[bcc]", mail.ReservedHeader},
		{"Content-Type header", func(m *mail.Message) { m.Headers = map[string]string{"Content-Type": "text/html"} }, "Headers[Content-Type]", mail.ReservedHeader},
		{"Subject header", func(m *mail.Message) { m.Headers = map[string]string{"SUBJECT": "x"} }, "Headers[SUBJECT]", mail.ReservedHeader},
		{"Resent-To header", func(m *mail.Message) { m.Headers = map[string]string{"Resent-To": "evil@x"} }, "Headers[Resent-To]", mail.ReservedHeader},
		{"duplicate header", func(m *mail.Message) { m.Headers = map[string]string{"X-A": "1", "x-a": "2"} }, "", mail.DuplicateHeader},
		{"CRLF in message id", func(m *mail.Message) { m.MessageID = "<a@b>\r\nBcc: evil@x" }, "MessageID", mail.InvalidMessageID},
		{"message id without brackets", func(m *mail.Message) { m.MessageID = "a@b" }, "MessageID", mail.InvalidMessageID},
		{"CRLF in filename", func(m *mail.Message) {
			m.Attachments = []mail.Attachment{{Filename: "a.crt\r\nBcc: evil@x"}}
		}, "Attachments[0].Filename", mail.ControlCharacter},
		{"no filename", func(m *mail.Message) { m.Attachments = []mail.Attachment{{}} }, "Attachments[0].Filename", mail.Missing},
		{"bad content type", func(m *mail.Message) {
			m.Attachments = []mail.Attachment{{Filename: "a", ContentType: "text/plain\r\nBcc: evil@x"}}
		}, "Attachments[0].ContentType", mail.InvalidContentType},
		{"multipart attachment", func(m *mail.Message) {
			m.Attachments = []mail.Attachment{{Filename: "a", ContentType: "multipart/mixed; boundary=x"}}
		}, "Attachments[0].ContentType", mail.InvalidContentType},
		{"invalid UTF-8 text", func(m *mail.Message) { m.Text = "\xff" }, "Text", mail.InvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.edit(m)
			raw, _, err := mail.Compose(m, now)
			var ce *mail.ComposeError
			if !errors.As(err, &ce) {
				t.Fatalf("Compose() = %q, %v, want *ComposeError", raw, err)
			}
			if ce.Reason != tt.reason || tt.field != "" && ce.Field != tt.field {
				t.Errorf("Compose() error = %s %v, want %s %v", ce.Field, ce.Reason, tt.field, tt.reason)
			}
			if errs.KindOf(err) != errs.Invalid {
				t.Errorf("errs.KindOf(%v) = %v, want invalid", err, errs.KindOf(err))
			}
		})
	}
}

// TestComposeHostileButValid checks inputs that look like attacks but are
// legal text: they must be kept as text, inside their field.
func TestComposeHostileButValid(t *testing.T) {
	names := []string{
		"Bcc: evil@x",
		"evil@x>, <other@x",
		`Alice" <evil@x>, "`,
		`\"; Bcc: evil@x`,
		"=?utf-8?q?=0D=0ABcc:_evil@x?=",
		"a,b;c:d<e>f(g)h[i]j@k.l",
		"   spaced   out   ",
		strings.Repeat("Ünïcödé ", 21),
		strings.Repeat("x", mail.MaxNameLen),
	}
	for _, name := range names {
		m := &mail.Message{
			From:    mail.Address{Name: name, Addr: "ca@example.com"},
			To:      []mail.Address{{Name: name, Addr: "alice@example.com"}, {Name: name, Addr: "bob@example.com"}},
			Subject: name,
			Text:    "x",
		}
		raw, _, err := mail.Compose(m, now)
		if err != nil {
			t.Errorf("Compose(name %q) error = %v", name, err)
			continue
		}
		checkWellFormed(t, raw)
		p := mustParse(t, raw)
		checkAddrs(t, p.Header, "From", []mail.Address{m.From})
		checkAddrs(t, p.Header, "To", m.To)
		if got := decodeHeader(t, p.Header, "Subject"); got != name {
			t.Errorf("Subject = %q, want %q", got, name)
		}
		if got := len(p.Header["Bcc"]); got != 0 {
			t.Errorf("name %q produced a Bcc header", name)
		}
	}
}

func TestComposeManyRecipients(t *testing.T) {
	m := &mail.Message{From: mail.Address{Addr: "ca@example.com"}, Subject: "x", Text: "x"}
	for i := range 200 {
		m.To = append(m.To, mail.Address{Name: fmt.Sprintf("Recipient Nummer %d Ä", i), Addr: fmt.Sprintf("r%d@example.com", i)})
	}
	raw, _, err := mail.Compose(m, now)
	if err != nil {
		t.Fatal(err)
	}
	checkWellFormed(t, raw)
	checkAddrs(t, mustParse(t, raw).Header, "To", m.To)
}

// TestComposeAttachmentParams checks that media type parameters, which
// mime.ParseMediaType decodes from RFC 2231 form, cannot smuggle a line
// break into a part header.
func TestComposeAttachmentParams(t *testing.T) {
	for _, ct := range []string{
		"application/x-evil; foo*=utf-8''%0D%0ABcc:%20evil@x",
		"application/x-evil; foo=\"a\\\r\nBcc: evil@x\"",
		"application/x-evil; name*=utf-8''%0ABcc:%20evil@x",
	} {
		m := &mail.Message{
			From:        mail.Address{Addr: "ca@example.com"},
			To:          []mail.Address{{Addr: "bob@example.com"}},
			Text:        "x",
			Attachments: []mail.Attachment{{Filename: "a.bin", ContentType: ct, Data: []byte("data")}},
		}
		raw, _, err := mail.Compose(m, now)
		if err != nil {
			continue
		}
		checkWellFormed(t, raw)
		if bytes.Contains(raw, []byte("\nBcc:")) {
			t.Errorf("content type %q put a Bcc line into the message:\n%s", ct, raw)
		}
		p := mustParse(t, raw)
		if len(p.Attachments) != 1 || p.Attachments[0].Filename != "a.bin" || string(p.Attachments[0].Data) != "data" {
			t.Errorf("content type %q: attachments = %+v", ct, p.Attachments)
		}
	}
}
