package enrolment_test

import (
	"context"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden pages in testdata/")

// golden compares a page with testdata/<name>.html, after replacing the
// given values (tokens) with fixed text.
func golden(t *testing.T, name, body string, replace ...string) {
	t.Helper()
	body = strings.NewReplacer(replace...).Replace(body)
	path := filepath.Join("testdata", name+".html")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if body != string(want) {
		t.Errorf("page %s differs from %s (go test -update rewrites it):\n%s", name, path, body)
	}
}

// TestGoldenPages pins the markup of the default views.
func TestGoldenPages(t *testing.T) {
	e := newEnv(t, "")
	en, token := e.invite("test", "alice@example.com")
	tok := []string{token, "TOKEN"}

	_, body := e.get("/e/" + token)
	golden(t, "form", body, tok...)
	form := validForm()
	form.Del("f_department")
	form.Del("accept_terms")
	_, body = e.post("/e/"+token, form)
	golden(t, "form_errors", body, tok...)
	_, body = e.post("/e/"+token, validForm())
	golden(t, "submitted", body)
	_, body = e.get("/e/" + token)
	golden(t, "bad_link", body, tok...)

	if _, err := e.svc.Approve(context.Background(), "admin:approver", en.ID); err != nil {
		t.Fatal(err)
	}
	act := e.token("alice@example.com", "/a/")
	_, body = e.get("/a/" + act)
	golden(t, "activate", body, act, "TOKEN")

	_, body = e.get("/enrol/open")
	golden(t, "open", body)
	_, body = e.post("/enrol/open", url.Values{"email": {"eve@example.org"}})
	golden(t, "open_error", body)
	_, body = e.post("/enrol/open", url.Values{"email": {"dave@example.com"}})
	golden(t, "open_sent", body)
	_, body = e.get("/nowhere")
	golden(t, "not_found", body)
}
