package enrolment_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTemplateOverrides checks that a template set's overrides are used,
// and that broken ones fall back to the defaults with a log entry.
func TestTemplateOverrides(t *testing.T) {
	dir := t.TempDir()
	set := filepath.Join(dir, "acme")
	writeFile(t, filepath.Join(set, "form", "form.html"), `{{define "content"}}<h1>broken{{.Heading</h1>{{end}}`)
	writeFile(t, filepath.Join(set, "form", "submitted.html"), `{{define "content"}}<p>{{.NoSuchField}}</p>{{end}}`)
	writeFile(t, filepath.Join(set, "form", "activate.html"), `{{define "content"}}<h1>ACME activation for {{.Mailbox}}</h1>{{end}}`)
	writeFile(t, filepath.Join(set, "static", "style.css"), `body { color: #123456; }`)
	e := newEnv(t, dir)
	p := testPolicy("test")
	p.Templates = "acme"
	p.Approval.Mode = enrol.ApproveAutomatic
	if _, err := e.svc.SavePolicy(t.Context(), "test", p); err != nil {
		t.Fatal(err)
	}
	_, token := e.invite("test", "gina@example.com")

	res, body := e.get("/e/" + token)
	wantStatus(t, "GET form, override does not parse", res, body, http.StatusOK)
	wantContains(t, "GET form, override does not parse", body, "Apply for your email certificate", `href="/static/sets/acme/style.css"`)
	if !strings.Contains(e.logs.String(), "override template does not parse") {
		t.Errorf("no log entry for the broken override:\n%s", e.logs)
	}

	res, body = e.post("/e/"+token, validForm())
	wantStatus(t, "POST form, override fails", res, body, http.StatusOK)
	wantContains(t, "POST form, override fails", body, "Your application is approved")
	if !strings.Contains(e.logs.String(), "override template failed") {
		t.Errorf("no log entry for the failing override:\n%s", e.logs)
	}

	res, body = e.get("/a/" + e.token("gina@example.com", "/a/"))
	wantStatus(t, "GET activation, override", res, body, http.StatusOK)
	wantContains(t, "GET activation, override", body, "ACME activation for gina@example.com", `href="/static/sets/acme/style.css"`)

	res, body = e.get("/static/sets/acme/style.css")
	wantStatus(t, "GET set stylesheet", res, body, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") || !strings.Contains(body, "#123456") {
		t.Errorf("set stylesheet: %s %q", ct, body)
	}
	for _, bad := range []string{"/static/sets/acme/..%2f..%2fsecret.css", "/static/sets/nope/style.css", "/static/sets/acme/x.html"} {
		res, body = e.get(bad)
		wantStatus(t, "GET "+bad, res, body, http.StatusNotFound)
	}

	// A fixed override is picked up without a restart.
	time.Sleep(10 * time.Millisecond)
	writeFile(t, filepath.Join(set, "form", "error.html"), `{{define "content"}}<h1>ACME: {{.Heading}}</h1>{{end}}`)
	res, body = e.get("/e/" + token) // spent now
	wantStatus(t, "GET spent link, error override", res, body, http.StatusNotFound)
	if strings.Contains(body, "ACME:") {
		t.Errorf("a bad link's page used a template set; it should not tell its policy")
	}
	res, body = e.get("/enrol/nowhere")
	wantStatus(t, "GET no open policy", res, body, http.StatusNotFound)
}

func TestStaticFiles(t *testing.T) {
	e := newEnv(t, "")
	for _, c := range []struct{ path, ctype string }{
		{"/static/style.css", "text/css"},
		{"/static/copy.js", "text/javascript"},
		{"/static/once.js", "text/javascript"},
	} {
		res, body := e.get(c.path)
		wantStatus(t, "GET "+c.path, res, body, http.StatusOK)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", c.path, ct, c.ctype)
		}
		if res.Header.Get("ETag") == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: ETag %q, Cache-Control %q", c.path, res.Header.Get("ETag"), res.Header.Get("Cache-Control"))
		}
	}
	res, body := e.get("/static/nope.css")
	wantStatus(t, "GET missing static file", res, body, http.StatusNotFound)
}

// TestSampleRestyling runs the sample of docs/samples/restyled, so that
// it keeps working as the views change.
func TestSampleRestyling(t *testing.T) {
	sample := filepath.Join("..", "..", "..", "docs", "samples", "restyled")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(sample, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "example", "form", "form.html"), read("form.html"))
	writeFile(t, filepath.Join(dir, "example", "static", "style.css"), read("style.css"))
	e := newEnv(t, dir)
	p := testPolicy("test")
	p.Templates = "example"
	if _, err := e.svc.SavePolicy(t.Context(), "test", p); err != nil {
		t.Fatal(err)
	}
	_, token := e.invite("test", "hugo@example.com")

	res, body := e.get("/e/" + token)
	wantStatus(t, "GET sample form", res, body, http.StatusOK)
	wantContains(t, "GET sample form", body, "Example Corp", "Request my certificate", `name="f_department"`, `href="/static/sets/example/style.css"`)

	form := validForm()
	form.Del("f_department")
	res, body = e.post("/e/"+token, form)
	wantStatus(t, "POST sample form without department", res, body, http.StatusBadRequest)
	wantContains(t, "POST sample form without department", body, `<span class="problem" id="f-department-error">Department is required.</span>`, "There is a problem")

	res, body = e.post("/e/"+token, validForm())
	wantStatus(t, "POST sample form", res, body, http.StatusOK)
	if logs := e.logs.String(); strings.Contains(logs, "override template") {
		t.Errorf("the sample logged template errors:\n%s", logs)
	}
}
