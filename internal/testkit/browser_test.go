package testkit_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/testkit"
)

// TestBrowser drives the harness against a small site: tabs do not share
// cookies, forms submit, screenshots are PNGs, downloads arrive whole.
func TestBrowser(t *testing.T) {
	payload := bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 1000)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		who := "nobody"
		if c, err := r.Cookie("who"); err == nil {
			who = c.Value
		}
		fmt.Fprintf(w, `<!doctype html><title>t</title><p id="who">%s</p>
<form method="post" action="/login"><input name="name" id="name"><button id="go">Go</button></form>
<a id="dl" href="/file" download="f.bin">file</a>`, who)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: r.FormValue("name"), Path: "/"})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(payload)
	})
	mux.HandleFunc("GET /csp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'")
		fmt.Fprint(w, `<!doctype html><title>csp</title><h1>csp</h1><script>document.title = "ran"</script>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	b := testkit.NewBrowser(t)
	admin, user := b.NewTab("admin"), b.NewTab("user")
	admin.Open(srv.URL)
	admin.Fill(map[string]string{"#name": "ann"})
	admin.Submit("#go")
	if got := admin.Text("#who"); got != "ann" {
		t.Errorf("after the form, admin tab shows %q, want ann", got)
	}
	if c := admin.Cookies(); len(c) != 1 || c[0].Name != "who" || c[0].Value != "ann" {
		t.Errorf("admin cookies = %v, want who=ann", c)
	}
	user.Open(srv.URL)
	if got := user.Text("#who"); got != "nobody" {
		t.Errorf("user tab shows %q: it shares the admin tab's cookies", got)
	}
	if admin.Has("#missing") || !admin.Has("#who") {
		t.Errorf("Has does not tell present from missing elements")
	}

	png, err := os.ReadFile(admin.Screenshot("home"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot is not a PNG file: %v", err)
	}
	if got := user.Download("#dl"); !bytes.Equal(got, payload) {
		t.Errorf("downloaded %d bytes, want the %d served", len(got), len(payload))
	}
	admin.CheckConsole()
	user.CheckConsole()

	// An inline script under a CSP without 'unsafe-inline' is refused, and
	// CheckConsole reports it.
	csp := b.NewTab("csp")
	csp.Open(srv.URL + "/csp")
	deadline := time.Now().Add(10 * time.Second)
	for len(csp.Problems()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p := csp.Problems(); len(p) != 1 || !strings.Contains(p[0], "Content Security Policy") {
		t.Errorf("problems after a CSP violation: %q", p)
	}
}
