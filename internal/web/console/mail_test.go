package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/web/console"
)

// fakeMailbox is a development mailbox holding fixed messages.
type fakeMailbox []console.DevMessage

func (f fakeMailbox) List(ctx context.Context, limit int) ([]console.DevMessage, error) {
	return f[:min(limit, len(f))], nil
}

func (f fakeMailbox) Get(ctx context.Context, id int64) (*console.DevMessage, error) {
	for _, m := range f {
		if m.ID == id {
			return &m, nil
		}
	}
	return nil, errs.E(errs.NotFound, "no message %d", id)
}

func TestMailSettings(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	session := e.login("ann@example.org")
	res, body := e.get("/console/mail", session)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("mail = %d", res.StatusCode)
	}
	for _, want := range []string{"smtp.example:587", "starttls", "ca@example.org", `action="/console/mail/test"`} {
		if !strings.Contains(body, want) {
			t.Errorf("mail page lacks %q", want)
		}
	}
	if strings.Contains(body, "Development mailbox") {
		t.Errorf("mail page shows a development mailbox with SMTP configured")
	}

	// The test message goes through the outbox, audited.
	res, _ = e.post("/console/mail/test", session, url.Values{"to": {"it@example.org"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("send test = %d, want 303", res.StatusCode)
	}
	flash, ok := cookie(res, "mailca_flash")
	if !ok {
		t.Fatalf("send test sets no flash message")
	}
	msgs, err := e.db.Messages(context.Background(), outbox.Filter{To: "it@example.org"})
	if err != nil || len(msgs) != 1 || msgs[0].Template != outbox.TestTemplate || msgs[0].MessageID == "" {
		t.Fatalf("outbox after the test = %+v, %v; want one test message", msgs, err)
	}
	tm, err := outbox.NewTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tm.Render(msgs[0])
	if err != nil || !strings.Contains(r.Subject, "Test message") || !strings.Contains(r.Text, "console:ann@example.org") {
		t.Errorf("rendered test message = %+v, %v", r, err)
	}
	evs, err := e.db.AuditFilter(context.Background(), store.AuditQuery{Action: "mail.test"})
	if err != nil || len(evs) != 1 || evs[0].Actor != "console:ann@example.org" {
		t.Errorf("mail.test audit events = %+v, %v", evs, err)
	}
	// The page the redirect leads to shows the flash message, and deletes it.
	r2 := httptest.NewRequest(http.MethodGet, "/console/mail", nil)
	r2.AddCookie(&http.Cookie{Name: "mailca_session", Value: session})
	r2.AddCookie(flash)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r2)
	if !strings.Contains(w.Body.String(), `<div class="flash" role="status">A test message to it@example.org is in the outbox`) {
		t.Errorf("the page after sending lacks the flash message:\n%s", excerpt(w.Body.String()))
	}
	if c, ok := cookie(w.Result(), "mailca_flash"); !ok || c.MaxAge >= 0 {
		t.Errorf("the flash cookie is not deleted once shown")
	}

	res, body = e.post("/console/mail/test", session, url.Values{"to": {"not an address"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not an email address") {
		t.Errorf("send test to a bad address = %d, want 400 naming the field", res.StatusCode)
	}
}

func TestDevMailbox(t *testing.T) {
	box := fakeMailbox{{ID: 7, To: "bob@example.com", Subject: "Your invitation", Text: "Open https://mailca.example/e/tok3n. Thanks <b>", Created: time.Now(), State: "pending"}}
	e := newEnv(t, func(c *console.Config) { c.Mailbox = box; c.Mail = console.MailSettings{From: "ca@example.org"} })
	e.account("ann@example.org", auth.Administrator)
	session := e.login("ann@example.org")
	_, body := e.get("/console/mail", session)
	if !strings.Contains(body, `href="/console/mail/7"`) || !strings.Contains(body, "No SMTP server is configured") {
		t.Errorf("mail page lacks the development mailbox:\n%s", excerpt(body))
	}
	res, body := e.get("/console/mail/7", session)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `<a href="https://mailca.example/e/tok3n">https://mailca.example/e/tok3n</a>.`) ||
		!strings.Contains(body, "Thanks &lt;b&gt;") {
		t.Errorf("message page = %d, want the link clickable and the rest escaped:\n%s", res.StatusCode, excerpt(body))
	}
	if res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("message page Referrer-Policy = %q, want no-referrer", res.Header.Get("Referrer-Policy"))
	}
	if res, _ := e.get("/console/mail/8", session); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown message = %d, want 404", res.StatusCode)
	}
}
