package console_test

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/web/console"
)

// withSet gives policy staff the template set "staff-look".
func (e *pagesEnv) withSet() {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.enrol.Policy(ctx, "staff")
	if err != nil {
		e.t.Fatal(err)
	}
	p.Templates = "staff-look"
	if _, err := e.enrol.SavePolicy(ctx, "cli", p); err != nil {
		e.t.Fatal(err)
	}
}

// TestTemplateRefused: a template that does not parse, or does not render
// with the data its messages carry, is refused with the error and never
// written.
func TestTemplateRefused(t *testing.T) {
	e := newPagesEnv(t)
	e.withSet()
	tests := []struct {
		name, path string
		form       url.Values
		want       string
	}{
		{"mail does not parse", "/console/templates/staff/invitation", url.Values{"subject": {"Hi"}, "txt": {"Hello {{.GivenName"}}, "unclosed action"},
		{"mail key unknown", "/console/templates/staff/rejected", url.Values{"subject": {"Hi"}, "txt": {"{{.Link}}"}}, "Link"},
		{"html without text", "/console/templates/staff/invitation", url.Values{"subject": {"Hi"}, "html": {"<p>Hi</p>"}}, "needs a text body"},
		{"page does not parse", "/console/templates/staff/form", url.Values{"body": {`{{define "content"}}{{if}}{{end}}`}}, "missing value for if"},
		{"page field unknown", "/console/templates/staff/submitted", url.Values{"body": {`{{define "content"}}{{.Nonesuch}}{{end}}`}}, "Nonesuch"},
		{"layout breaks a page", "/console/templates/staff/layout", url.Values{"body": {`{{define "layout"}}{{template "content" .}}{{.Heading}}{{end}}`}}, "Heading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := e.post(tt.path, e.admin, tt.form)
			wantStatus(t, "save", res, body, http.StatusBadRequest)
			if !strings.Contains(body, `id="template-error"`) || !strings.Contains(body, tt.want) {
				t.Errorf("the error %q is not shown:\n%s", tt.want, body)
			}
			if !strings.Contains(body, "Nothing was saved") {
				t.Errorf("the page does not say nothing was saved")
			}
		})
	}
	err := filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("refused templates wrote %s", path)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
}

// TestTemplatePreview renders the posted email in a sandboxed frame, its
// markup escaped into srcdoc, so an administrator's script cannot run in
// the console; saving writes the set's override, and reset removes it.
func TestTemplatePreview(t *testing.T) {
	e := newPagesEnv(t)
	e.withSet()
	form := url.Values{"subject": {"Your certificate, {{.GivenName}}"}, "txt": {"Hello {{.GivenName}}: {{.Link}}"},
		"html": {`<p class="x">Hello {{.GivenName}}</p><script>alert(1)</script><a href="{{.Link}}">open</a>`}}
	res, body := e.post("/console/templates/staff/invitation/preview", e.admin, form)
	wantStatus(t, "preview", res, body, http.StatusOK)
	if !strings.Contains(body, `<iframe sandbox="" srcdoc="`) {
		t.Fatalf("no sandboxed frame:\n%s", body)
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, `<p class="x">`) {
		t.Errorf("the preview's markup is in the console page unescaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;p class=&#34;x&#34;&gt;Hello Alice&lt;/p&gt;") {
		t.Errorf("the frame does not hold the rendered email:\n%s", body)
	}
	if !strings.Contains(body, `id="preview-subject">Your certificate, Alice<`) {
		t.Errorf("no rendered subject")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "staff-look", "mail", "invitation.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a preview saved the template (%v)", err)
	}

	res, body = e.post("/console/templates/staff/invitation", e.admin, form)
	wantStatus(t, "save", res, body, http.StatusSeeOther)
	b, err := os.ReadFile(filepath.Join(e.dir, "staff-look", "mail", "invitation.txt"))
	if err != nil || string(b) != form.Get("txt") {
		t.Errorf("saved text = %q, %v", b, err)
	}
	if evs, err := e.db.AuditFilter(context.Background(), store.AuditQuery{Action: "template.save"}); err != nil || len(evs) != 1 || evs[0].Object != "template:staff-look/invitation" {
		t.Errorf("audit events of the save = %+v, %v", evs, err)
	}
	_, body = e.get("/console/templates", e.admin)
	if !strings.Contains(body, `invitation</a> <span class="hint">(changed)`) {
		t.Errorf("the list does not mark the changed template:\n%s", body)
	}

	// A page template is previewed as a whole page.
	res, body = e.post("/console/templates/staff/submitted/preview", e.admin, url.Values{"body": {`{{define "content"}}<h1>Thanks, {{.GivenName}}</h1>{{end}}`}})
	wantStatus(t, "page preview", res, body, http.StatusOK)
	if !strings.Contains(body, "&lt;h1&gt;Thanks, Alice&lt;/h1&gt;") {
		t.Errorf("page preview:\n%s", body)
	}

	res, body = e.post("/console/templates/staff/invitation", e.admin, url.Values{"reset": {"1"}})
	wantStatus(t, "reset", res, body, http.StatusSeeOther)
	if _, err := os.Stat(filepath.Join(e.dir, "staff-look", "mail", "invitation.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reset left the override (%v)", err)
	}
}

// TestTemplateWithoutSet: a policy without a template set cannot be edited
// until it has one.
func TestTemplateWithoutSet(t *testing.T) {
	e := newPagesEnv(t)
	res, body := e.get("/console/templates/staff/invitation", e.admin)
	wantStatus(t, "no set", res, body, http.StatusConflict)
	if !strings.Contains(body, "give it a template set") {
		t.Errorf("no advice:\n%s", body)
	}
}

// TestTemplateSaveReachesMail: a saved email template is used by the
// outbox's templates at once, without a restart.
func TestTemplateSaveReachesMail(t *testing.T) {
	var tm *outbox.Templates
	e := newPagesEnv(t, func(c *console.Config) {
		var err error
		if tm, err = outbox.NewTemplates(c.TemplateDir); err != nil {
			t.Fatal(err)
		}
		c.ReloadMail = tm.Reload
	})
	e.withSet()
	res, body := e.post("/console/templates/staff/invitation", e.admin, url.Values{"subject": {"Staff certificates for {{.GivenName}}"}, "txt": {"Hello {{.GivenName}}: {{.Link}}"}})
	wantStatus(t, "save", res, body, http.StatusSeeOther)
	m := outbox.Message{ID: 1, Template: "invitation", TemplateSet: "staff-look", To: "alice@example.com", MessageID: "<t@mailca.test>",
		Data: map[string]string{"GivenName": "Alice", "Mailbox": "alice@example.com", "Link": "https://mailca.example/e/x", "Expires": "tomorrow", "Policy": "staff"}}
	r, err := tm.Render(m)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if r.Subject != "Staff certificates for Alice" {
		t.Errorf("subject after the save = %q, want the edited template's", r.Subject)
	}
}
