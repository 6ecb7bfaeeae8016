package outbox_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/mail"
	"github.com/mailca/mailca/internal/outbox"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func message(template, to string) outbox.Message {
	return outbox.Message{ID: 1, Template: template, To: to, Data: testData(template, to), MessageID: "<t@mailca.test>"}
}

func TestNames(t *testing.T) {
	if got, want := strings.Join(outbox.Names(), ","), strings.Join(templateNames, ","); got != want {
		t.Errorf("Names() = %s, want %s", got, want)
	}
}

// TestRenderDefaults renders every default with the data enrolment sends
// and checks what a reader must find in it.
func TestRenderDefaults(t *testing.T) {
	tm := mustTemplates(t, "")
	tests := []struct {
		template string
		subject  []string // words the subject must hold
		text     []string // what the text must hold
	}{
		{"invitation", []string{"invitation", "certificate"}, []string{"https://certs.example.com/e/tok3n-invitation", "15 March 2026 09:00 UTC", "personal", "S/MIME", "Hello Alice,"}},
		{"verification", []string{"Confirm", "email address"}, []string{"https://certs.example.com/e/tok3n-verification", "15 March 2026 09:00 UTC", "alice@example.com"}},
		{"application", []string{"Approval needed", "Alice Liddell"}, []string{"mailca approve 42", `mailca reject --reason "why, for the applicant" 42`, "Alice Liddell <alice@example.com>", `"staff"`, "application 42"}},
		{"approved", []string{"approved", "activate"}, []string{"https://certs.example.com/a/tok3n-approved", "15 March 2026 09:00 UTC", "24 hours", "control the mailbox alice@example.com"}},
		{"rejected", []string{"not approved"}, []string{"not an employee", "alice@example.com"}},
		{"issued", []string{"issued"}, []string{"14 March 2028", "7f3a9c01d2e4b5a6", "certificate.cer", "password", "public part"}},
		{"revoked", []string{"revoked"}, []string{"alice@example.com", "7f3a9c01d2e4b5a6", "14 March 2027 10:30 UTC", "compromised", "new key"}},
		{"reminder", []string{"expires", "14 March 2028"}, []string{"https://certs.example.com/e/tok3n-renewal", "28 February 2028 09:00 UTC", "30 days", "7f3a9c01d2e4b5a6"}},
		{"digest", []string{"2", "30 days"}, []string{"bob@example.com", "alice@example.com  serial 7f3a9c01d2e4b5a6"}},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			r, err := tm.Render(message(tt.template, "alice@example.com"))
			if err != nil {
				t.Fatalf("Render() error = %v", err)
			}
			for _, w := range tt.subject {
				if !strings.Contains(r.Subject, w) {
					t.Errorf("Subject = %q, want it to contain %q", r.Subject, w)
				}
			}
			for _, w := range tt.text {
				if !strings.Contains(r.Text, w) {
					t.Errorf("Text lacks %q:\n%s", w, r.Text)
				}
			}
			if !strings.Contains(r.HTML, `<html lang="en">`) || !strings.Contains(r.HTML, "<title>"+r.Subject+"</title>") {
				t.Errorf("HTML lacks its language or title:\n%s", r.HTML)
			}
			if link := testData(tt.template, "alice@example.com")["Link"]; link != "" && !strings.Contains(r.HTML, `href="`+link+`"`) {
				t.Errorf("HTML lacks a link to %s:\n%s", link, r.HTML)
			}
			if strings.Contains(r.Text+r.HTML, "<no value>") {
				t.Errorf("a key rendered as <no value>")
			}
			if _, _, err := mail.Compose(&mail.Message{
				From: mail.Address{Addr: "ca@example.com"}, To: []mail.Address{{Addr: "alice@example.com"}},
				Subject: r.Subject, Text: r.Text, HTML: r.HTML, Attachments: r.Attachments,
			}, time.Now()); err != nil {
				t.Errorf("Compose(rendered) error = %v", err)
			}
		})
	}
}

// TestRenderEscapesHTML puts markup in every value: the HTML part shows it
// as text.
func TestRenderEscapesHTML(t *testing.T) {
	tm := mustTemplates(t, "")
	for _, name := range templateNames {
		t.Run(name, func(t *testing.T) {
			m := message(name, "alice@example.com")
			for k := range m.Data {
				if k != "Link" && k != "CertificatePEM" {
					m.Data[k] = `<script>alert("x")</script>`
				}
			}
			m.Data["Sender"] = `<b>Evil</b>`
			r, err := tm.Render(m)
			if err != nil {
				t.Fatalf("Render() error = %v", err)
			}
			if strings.Contains(r.HTML, "<script>") || strings.Contains(r.HTML, "<b>") {
				t.Errorf("HTML holds unescaped markup:\n%s", r.HTML)
			}
			if !strings.Contains(r.HTML, "&lt;script&gt;") {
				t.Errorf("HTML lacks the escaped value:\n%s", r.HTML)
			}
		})
	}
}

// TestRenderRefusesScriptLinks checks that html/template keeps a link that
// is not http(s) out of an href.
func TestRenderRefusesScriptLinks(t *testing.T) {
	m := message("invitation", "alice@example.com")
	m.Data["Link"] = "javascript:alert(1)"
	r, err := mustTemplates(t, "").Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, `href="javascript:`) {
		t.Errorf("HTML links to javascript:\n%s", r.HTML)
	}
}

func TestRenderSubjectStaysOneLine(t *testing.T) {
	tm := mustTemplates(t, "")
	tests := []struct{ name, givenName, want string }{
		{"crlf", "Eve\r\nBcc: mallory@example.net", "Approval needed: certificate application from Eve Bcc: mallory@example.net Liddell"},
		{"lf", "Eve\nX-Evil: 1", "Approval needed: certificate application from Eve X-Evil: 1 Liddell"},
		{"separators", "Eve\u2028\u202eLiddell\x00", "Approval needed: certificate application from Eve Liddell Liddell"},
		{"invalid utf-8", "Eve\xff", "Approval needed: certificate application from Eve Liddell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := message("application", "ra@example.com")
			m.Data["GivenName"] = tt.givenName
			r, err := tm.Render(m)
			if err != nil {
				t.Fatalf("Render() error = %v", err)
			}
			if r.Subject != tt.want {
				t.Errorf("Subject = %q, want %q", r.Subject, tt.want)
			}
			raw, _, err := mail.Compose(&mail.Message{
				From: mail.Address{Addr: "ca@example.com"}, To: []mail.Address{{Addr: "ra@example.com"}},
				Subject: r.Subject, Text: r.Text, HTML: r.HTML,
			}, time.Now())
			if err != nil {
				t.Fatalf("Compose(rendered) error = %v", err)
			}
			head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			for line := range strings.SplitSeq(string(head), "\r\n") {
				if strings.HasPrefix(line, "Bcc:") || strings.HasPrefix(line, "X-Evil:") {
					t.Errorf("injected header line %q", line)
				}
			}
		})
	}
}

func TestRenderLongSubjectIsCut(t *testing.T) {
	m := message("application", "ra@example.com")
	m.Data["GivenName"] = strings.Repeat("é", 500)
	r, err := mustTemplates(t, "").Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(r.Subject)); n != 200 || !strings.HasSuffix(r.Subject, "…") {
		t.Errorf("Subject has %d runes, ends %q; want 200 ending in …", n, r.Subject[len(r.Subject)-8:])
	}
}

func TestRenderErrors(t *testing.T) {
	tm := mustTemplates(t, "")
	noLink := message("invitation", "alice@example.com")
	delete(noLink.Data, "Link")
	badCert := message("issued", "alice@example.com")
	badCert.Data["CertificatePEM"] = "not a certificate"
	erased := message("issued", "alice@example.com")
	erased.Data = nil
	tests := []struct {
		name string
		m    outbox.Message
		want error
	}{
		{"unknown template", outbox.Message{Template: "nonesuch", To: "a@example.com", Data: map[string]string{}}, nil},
		{"missing key", noLink, nil},
		{"bad certificate", badCert, nil},
		{"erased", erased, outbox.ErrErased},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tm.Render(tt.m)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("Render() error = %v, want %v", err, tt.want)
				}
				return
			}
			var re *outbox.RenderError
			if !errors.As(err, &re) || re.Template != tt.m.Template {
				t.Errorf("Render() error = %v, want a *RenderError for %s", err, tt.m.Template)
			}
		})
	}
}

func TestRenderOptionalKeys(t *testing.T) {
	tm := mustTemplates(t, "")
	m := message("rejected", "bob@example.com")
	m.Data["GivenName"], m.Data["Reason"] = "", ""
	r, err := tm.Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Text, "Hello,\n") || !strings.Contains(r.Text, "No reason was given.") {
		t.Errorf("Text without a name or reason:\n%s", r.Text)
	}
	m = message("issued", "bob@example.com")
	m.Data["RevocationLink"] = "https://certs.example.com/r/xyz"
	if r, err = tm.Render(m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "https://certs.example.com/r/xyz") || !strings.Contains(r.HTML, `href="https://certs.example.com/r/xyz"`) {
		t.Errorf("issued mail lacks the revocation link:\n%s", r.Text)
	}
}

func TestIssuedAttachesCertificate(t *testing.T) {
	r, err := mustTemplates(t, "").Render(message("issued", "alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Attachments) != 2 {
		t.Fatalf("%d attachments, want 2", len(r.Attachments))
	}
	p, d := r.Attachments[0], r.Attachments[1]
	if p.Filename != "certificate.pem" || p.ContentType != "application/x-pem-file" || string(p.Data) != testCertPEM {
		t.Errorf("PEM attachment = %s %s %q", p.Filename, p.ContentType, p.Data)
	}
	if d.Filename != "certificate.cer" || d.ContentType != "application/pkix-cert" {
		t.Errorf("DER attachment = %s %s", d.Filename, d.ContentType)
	}
	c, err := x509.ParseCertificate(d.Data)
	if err != nil || c.EmailAddresses[0] != "alice@example.com" {
		t.Errorf("DER attachment does not parse as the certificate: %v", err)
	}
}

func TestPreview(t *testing.T) {
	tm := mustTemplates(t, "")
	subject, text, html, err := tm.Preview(message("approved", "alice@example.com"))
	if err != nil || !strings.Contains(subject, "approved") || !strings.Contains(text, "/a/tok3n-approved") || !strings.Contains(html, "/a/tok3n-approved") {
		t.Errorf("Preview() = %q, %q, %q, %v", subject, text, html, err)
	}
	sent := message("approved", "alice@example.com")
	sent.Data = nil
	if _, _, _, err := tm.Preview(sent); !errors.Is(err, outbox.ErrErased) {
		t.Errorf("Preview(sent message) error = %v, want ErrErased", err)
	}
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOverrides(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		// A text-only invitation of its own.
		"acme/mail/invitation.subject": "ACME: your S/MIME invitation, {{.GivenName}}",
		"acme/mail/invitation.txt":     "Dear {{.GivenName}}, start here: {{.Link}}\n",
		// Subject only: the body stays the default.
		"acme/mail/approved.subject": "ACME approved you",
		// Does not parse: left out.
		"acme/mail/verification.txt": "{{.Link",
		// Parses, fails at execution: the default is used.
		"acme/mail/rejected.txt":  "{{.NoSuchKey}}",
		"acme/mail/rejected.html": "<p>{{.Reason}}</p>",
		// HTML without text: ignored.
		"acme/mail/issued.html": "<p>custom</p>",
		// Not a template.
		"acme/mail/invitaton.txt": "typo",
		"other/mail/README":       "notes",
	})
	tm := mustTemplates(t, dir)
	render := func(template, set string) *outbox.Rendered {
		t.Helper()
		m := message(template, "alice@example.com")
		m.TemplateSet = set
		r, err := tm.Render(m)
		if err != nil {
			t.Fatalf("Render(%s, set %q) error = %v", template, set, err)
		}
		return r
	}
	def := render("invitation", "")

	r := render("invitation", "acme")
	if r.Subject != "ACME: your S/MIME invitation, Alice" || r.Text != "Dear Alice, start here: https://certs.example.com/e/tok3n-invitation\n" || r.HTML != "" {
		t.Errorf("acme invitation = %+v", r)
	}
	if r := render("invitation", "other"); r.Subject != def.Subject || r.Text != def.Text {
		t.Errorf("set without overrides rendered %q", r.Subject)
	}
	if r := render("invitation", "no-such-set"); r.Subject != def.Subject {
		t.Errorf("unknown set rendered %q", r.Subject)
	}
	r = render("approved", "acme")
	if d := render("approved", ""); r.Subject != "ACME approved you" || r.Text != d.Text || !strings.Contains(r.HTML, "<title>ACME approved you</title>") {
		t.Errorf("subject-only override: subject %q, body changed %v", r.Subject, r.Text != d.Text)
	}
	for _, name := range []string{"verification", "rejected", "issued"} {
		if r, d := render(name, "acme"), render(name, ""); r.Text != d.Text || r.HTML != d.HTML {
			t.Errorf("%s: broken override was used rather than the default", name)
		}
	}

	problems := tm.Problems()
	for _, want := range []string{"verification.txt", "rejected body failed", "issued.html without issued.txt", "invitaton.txt", "README"} {
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p.Error(), want)
		}
		if !found {
			t.Errorf("Problems() lacks %q: %v", want, problems)
		}
	}
	// A problem is recorded once, however often it happens.
	n := len(tm.Problems())
	render("rejected", "acme")
	if len(tm.Problems()) != n {
		t.Errorf("a repeated problem was recorded again")
	}
}

func TestOverrideDirMissing(t *testing.T) {
	tm := mustTemplates(t, filepath.Join(t.TempDir(), "nonesuch"))
	if _, err := tm.Render(message("invitation", "a@example.com")); err != nil || len(tm.Problems()) != 0 {
		t.Errorf("Render() = %v, problems %v", err, tm.Problems())
	}
}

// TestGolden compares each rendered default with testdata/<name>.golden;
// go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	tm := mustTemplates(t, "")
	for _, name := range templateNames {
		t.Run(name, func(t *testing.T) {
			m := message(name, "alice@example.com")
			m.Data["Sender"] = "Example Corp"
			if name == "issued" {
				m.Data["CertificatePEM"] = testCertPEM
			}
			r, err := tm.Render(m)
			if err != nil {
				t.Fatal(err)
			}
			got := "Subject: " + r.Subject + "\n\n----- text -----\n" + r.Text + "\n----- html -----\n" + r.HTML
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendered %s differs from %s (run with -update to accept):\n%s", name, path, got)
			}
		})
	}
}

// FuzzRender renders every template with hostile values and checks that
// the result always composes: a user's name must never stop mail.
func FuzzRender(f *testing.F) {
	f.Add("Alice", "Liddell", "no reason", "Example Corp")
	f.Add("Eve\r\nBcc: x@example.net", "\x00", "\u2028\u202e", "=?utf-8?q?x?=")
	f.Add("\xff\xfe", strings.Repeat("x", 3000), "{{.Link}}", "")
	tm, err := outbox.NewTemplates("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, given, surname, reason, sender string) {
		for _, name := range templateNames {
			m := message(name, "alice@example.com")
			for k := range m.Data {
				switch k {
				case "GivenName", "Policy", "ID", "Expires", "NotAfter":
					m.Data[k] = given
				case "Surname", "Serial":
					m.Data[k] = surname
				case "Reason":
					m.Data[k] = reason
				}
			}
			m.Data["Sender"] = sender
			r, err := tm.Render(m)
			if err != nil {
				t.Fatalf("Render(%s) error = %v", name, err)
			}
			if _, _, err := mail.Compose(&mail.Message{
				From: mail.Address{Addr: "ca@example.com"}, To: []mail.Address{{Addr: "alice@example.com"}},
				Subject: r.Subject, Text: r.Text, HTML: r.HTML, Attachments: r.Attachments,
			}, time.Now()); err != nil {
				t.Fatalf("Compose(%s) error = %v", name, err)
			}
		}
	})
}

// TestReload: an override written after start is used once Reload has read
// it, and one removed is no longer used.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	tm := mustTemplates(t, dir)
	subject := func() string {
		t.Helper()
		m := message("invitation", "alice@example.com")
		m.TemplateSet = "acme"
		r, err := tm.Render(m)
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		return r.Subject
	}
	before := subject()
	writeFiles(t, dir, map[string]string{"acme/mail/invitation.subject": "ACME invites {{.GivenName}}"})
	if got := subject(); got != before {
		t.Errorf("before Reload: subject %q, want the default %q", got, before)
	}
	if err := tm.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := subject(); got != "ACME invites Alice" {
		t.Errorf("after Reload: subject %q, want the override", got)
	}
	if err := os.RemoveAll(filepath.Join(dir, "acme")); err != nil {
		t.Fatal(err)
	}
	if err := tm.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := subject(); got != before {
		t.Errorf("after removal: subject %q, want the default %q", got, before)
	}
}
