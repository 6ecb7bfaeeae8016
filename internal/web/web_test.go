package web_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
)

// server is the handler on a real database and engine, with an
// invitation, an activation link and a referral ready.
type server struct {
	t         *testing.T
	db        *sqlite.DB
	svc       *enrol.Service
	h         http.Handler
	logs      *testkit.LogBuffer
	formToken string // invitation of alice, unused
	actToken  string // activation of bob, unused
	referral  string // for carol, unused
}

func newServer(t *testing.T, box web.DevMailbox) *server {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	hier := testkit.NewHierarchy(t, keys.ECDSAP256)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, hier, db), PublicURL: "https://mailca.example", ServerKeyType: keys.ECDSAP256})

	secret := make([]byte, 32)
	rand.Read(secret)
	key := enrol.ReferralKey{ID: "site", Secret: base64.RawURLEncoding.EncodeToString(secret)}
	p := enrol.DefaultPolicy()
	p.Name = "test"
	p.Channels = enrol.Channels{Invitation: true, Referral: true, Open: true}
	p.ReferralKeys = []enrol.ReferralKey{key}
	if _, err := svc.SavePolicy(ctx, "test", p); err != nil {
		t.Fatalf("SavePolicy: %v", err)
	}
	logs := &testkit.LogBuffer{}
	h, err := web.New(web.Config{
		Enrol: svc, Mailbox: box, ChainPEM: hier.Issuer.ChainPEM(),
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	s := &server{t: t, db: db, svc: svc, h: h, logs: logs}

	if _, err := svc.Invite(ctx, "admin:test", "test", enrol.Invitee{Email: "alice@example.com", GivenName: "Alice"}); err != nil {
		t.Fatal(err)
	}
	s.formToken = s.token("alice@example.com", "/e/")
	bob, err := svc.Invite(ctx, "admin:test", "test", enrol.Invitee{Email: "bob@example.com", GivenName: "Bob", Surname: "B"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Submit(ctx, s.token("bob@example.com", "/e/"), enrol.Application{GivenName: "Bob", Surname: "B", AcceptTerms: true, TermsVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "admin:approver", bob.ID); err != nil {
		t.Fatal(err)
	}
	s.actToken = s.token("bob@example.com", "/a/")
	now := time.Now()
	s.referral, err = enrol.SignReferral(enrol.Referral{Email: "carol@example.com", Policy: "test", IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix(), ID: "r1"}, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *server) token(addr, prefix string) string {
	s.t.Helper()
	msgs, err := s.db.Messages(context.Background(), outbox.Filter{To: addr})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, m := range msgs {
		if u, err := url.Parse(m.Data["Link"]); err == nil {
			if tok, ok := strings.CutPrefix(u.Path, prefix); ok {
				return tok
			}
		}
	}
	s.t.Fatalf("no %s link to %s", prefix, addr)
	return ""
}

func (s *server) do(req *http.Request) (*http.Response, string) {
	s.t.Helper()
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func formRequest(method, target string, form url.Values) *http.Request {
	req := httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// snapshot counts what a request could change.
func (s *server) snapshot() string {
	s.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	list, err := s.svc.Enrolments(ctx, enrol.Filter{Limit: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range list {
		b.WriteString(e.Mailbox + "=" + string(e.State) + " ")
	}
	msgs, _ := s.db.Counts(ctx)
	certs, _ := s.db.CountCertificates(ctx)
	for k, v := range msgs {
		b.WriteString("msg:" + k + "=" + strconv.Itoa(v) + " ")
	}
	for k, v := range certs {
		b.WriteString("cert:" + k + "=" + strconv.Itoa(v) + " ")
	}
	return b.String()
}

func TestSecurityHeaders(t *testing.T) {
	s := newServer(t, nil)
	cases := []struct {
		name   string
		req    *http.Request
		status int
		store  bool // Cache-Control: no-store
	}{
		{"form", httptest.NewRequest("GET", "/e/"+s.formToken, nil), 200, true},
		{"bad form link", httptest.NewRequest("GET", "/e/nonsense", nil), 404, true},
		{"activation", httptest.NewRequest("GET", "/a/"+s.actToken, nil), 200, true},
		{"referral", httptest.NewRequest("GET", "/r?t="+url.QueryEscape(s.referral), nil), 200, true},
		{"bad referral", httptest.NewRequest("GET", "/r?t=x.y.z", nil), 404, true},
		{"open", httptest.NewRequest("GET", "/enrol/test", nil), 200, true},
		{"invalid post", formRequest("POST", "/e/"+s.formToken, url.Values{}), 400, true},
		{"cross-origin post", func() *http.Request {
			r := formRequest("POST", "/e/"+s.formToken, url.Values{})
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}(), 403, true},
		{"unknown page", httptest.NewRequest("GET", "/nope", nil), 404, true},
		{"dev mailbox off", httptest.NewRequest("GET", "/dev/mailbox", nil), 404, true},
		{"stylesheet", httptest.NewRequest("GET", "/static/style.css", nil), 200, false},
		{"script", httptest.NewRequest("GET", "/static/copy.js", nil), 200, false},
		{"chain", httptest.NewRequest("GET", "/ca/chain.pem", nil), 200, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := s.do(c.req)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d\n%s", res.StatusCode, c.status, body)
			}
			want := map[string]string{
				"Referrer-Policy":         "no-referrer",
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
			}
			if c.store {
				want["Cache-Control"] = "no-store"
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
					t.Errorf("page has inline script or style, which the CSP blocks")
				}
			}
		})
	}
}

// TestGetChangesNothing requests every page a link leads to, twice, and
// checks that no row changed and the links still work.
func TestGetChangesNothing(t *testing.T) {
	s := newServer(t, nil)
	before := s.snapshot()
	for range 2 {
		for _, target := range []string{"/e/" + s.formToken, "/a/" + s.actToken, "/r?t=" + url.QueryEscape(s.referral), "/enrol/test", "/ca/chain.pem"} {
			if res, body := s.do(httptest.NewRequest("GET", target, nil)); res.StatusCode != 200 {
				t.Fatalf("GET %s: %d\n%s", target, res.StatusCode, body)
			}
			if res, _ := s.do(httptest.NewRequest("HEAD", target, nil)); res.StatusCode != 200 {
				t.Fatalf("HEAD %s: %d", target, res.StatusCode)
			}
		}
	}
	if after := s.snapshot(); after != before {
		t.Errorf("GET changed the database:\nbefore %s\nafter  %s", before, after)
	}
	ctx := context.Background()
	if _, _, err := s.svc.OpenLink(ctx, s.formToken, enrol.PurposeInvitation); err != nil {
		t.Errorf("invitation link after GETs: %v", err)
	}
	if _, _, err := s.svc.OpenLink(ctx, s.actToken, enrol.PurposeActivation); err != nil {
		t.Errorf("activation link after GETs: %v", err)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	s := newServer(t, nil)
	valid := url.Values{"f_given_name": {"Alice"}, "f_surname": {"L"}, "accept_terms": {"yes"}, "terms_version": {"1"}}
	cases := []struct {
		name    string
		headers map[string]string
	}{
		{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"Sec-Fetch-Site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"Origin of another host", map[string]string{"Origin": "https://evil.example"}},
	}
	for _, c := range cases {
		for _, target := range []string{"/e/" + s.formToken, "/a/" + s.actToken, "/enrol/test", "/r"} {
			req := formRequest("POST", target, valid)
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			res, body := s.do(req)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s, POST %s: status %d, want 403\n%s", c.name, target[:3], res.StatusCode, body)
			}
		}
	}
	if e, _, err := s.svc.OpenLink(context.Background(), s.formToken, enrol.PurposeInvitation); err != nil || e.State != enrol.Invited {
		t.Errorf("after refused posts the invitation is not open: %v", err)
	}

	req := formRequest("POST", "/e/"+s.formToken, valid)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", "http://example.com")
	if res, body := s.do(req); res.StatusCode != http.StatusOK {
		t.Errorf("same-origin POST: status %d, want 200\n%s", res.StatusCode, body)
	}
}

// TestLogsHoldNoSecrets drives every link page, good and bad, and checks
// that the log names routes but no token, referral, password or form value.
func TestLogsHoldNoSecrets(t *testing.T) {
	s := newServer(t, nil)
	s.do(httptest.NewRequest("GET", "/e/"+s.formToken, nil))
	s.do(formRequest("POST", "/e/"+s.formToken, url.Values{"f_given_name": {"Zebediah-Secret"}}))
	s.do(formRequest("POST", "/e/"+s.formToken, url.Values{"f_given_name": {"Zebediah-Secret"}, "f_surname": {"X"}, "accept_terms": {"yes"}, "terms_version": {"1"}}))
	s.do(httptest.NewRequest("GET", "/e/"+s.formToken, nil)) // now spent
	s.do(httptest.NewRequest("GET", "/a/"+s.actToken, nil))
	res, body := s.do(formRequest("POST", "/a/"+s.actToken, url.Values{"mode": {"server"}}))
	if res.StatusCode != 200 {
		t.Fatalf("activation: %d\n%s", res.StatusCode, body)
	}
	password := body[strings.Index(body, `id="p12-password"`):]
	password = password[strings.Index(password, ">")+1 : strings.Index(password, "<")]
	s.do(formRequest("POST", "/a/"+s.actToken, url.Values{"mode": {"server"}}))
	s.do(httptest.NewRequest("GET", "/r?t="+url.QueryEscape(s.referral), nil))
	s.do(formRequest("POST", "/r", url.Values{"t": {s.referral}, "f_given_name": {"Zebediah-Secret"}}))
	s.do(httptest.NewRequest("GET", "/r?t="+url.QueryEscape(s.referral+"x"), nil))
	s.do(formRequest("POST", "/enrol/test", url.Values{"email": {"secret-person@example.com"}}))

	logs := s.logs.String()
	for _, secret := range []string{s.formToken, s.actToken, s.referral, strings.Split(s.referral, ".")[2], password, "Zebediah-Secret", "secret-person"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	for _, route := range []string{`"route":"GET /e/{token}"`, `"route":"POST /a/{token}"`, `"route":"GET /r"`, `"route":"POST /enrol/{policy}"`} {
		if !strings.Contains(logs, route) {
			t.Errorf("the log lacks %s:\n%s", route, logs)
		}
	}
}

// fakeMailbox is a DevMailbox in memory.
type fakeMailbox struct{ msgs []web.DevMessage }

func (f *fakeMailbox) List(ctx context.Context, limit int) ([]web.DevMessage, error) {
	return f.msgs, nil
}

func (f *fakeMailbox) Get(ctx context.Context, id int64) (*web.DevMessage, error) {
	for i := range f.msgs {
		if f.msgs[i].ID == id {
			return &f.msgs[i], nil
		}
	}
	if id == 99 {
		return nil, errors.New("database is on fire")
	}
	return nil, errs.E(errs.NotFound, "no message %d", id)
}

func TestDevMailbox(t *testing.T) {
	box := &fakeMailbox{msgs: []web.DevMessage{{
		ID: 7, To: "alice@example.com", Subject: "Your <certificate>", State: "pending", Created: time.Now(),
		Text: "Open https://mailca.example/e/TOKEN. Then <b>wait</b>.\njavascript:alert(1)",
		HTML: `<p style="color:red">Hello <a href="https://mailca.example/e/TOKEN">link</a></p>`,
	}}}
	s := newServer(t, box)
	get := func(path, remote string, hdr ...string) (*http.Response, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = remote
		req.Host = "localhost:8080"
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
				continue
			}
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return s.do(req)
	}
	for _, remote := range []string{"192.0.2.1:1234", "[2001:db8::1]:443", "10.0.0.1:80"} {
		for _, p := range []string{"/dev/mailbox", "/dev/mailbox/7", "/dev/mailbox/7/html"} {
			if res, _ := get(p, remote); res.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s from %s: %d, want 404", p, remote, res.StatusCode)
			}
		}
	}
	if res, _ := get("/dev/mailbox", "127.0.0.1:5000", "X-Forwarded-For", "192.0.2.1"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dev/mailbox through a proxy: %d, want 404", res.StatusCode)
	}
	// DNS rebinding: a loopback connection for another site's name.
	if res, _ := get("/dev/mailbox", "127.0.0.1:5000", "Host", "evil.example:8080"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dev/mailbox with Host evil.example: %d, want 404", res.StatusCode)
	}
	if res, _ := get("/dev/mailbox", "127.0.0.1:5000", "Host", "127.0.0.1:8080"); res.StatusCode != 200 {
		t.Errorf("GET /dev/mailbox with Host 127.0.0.1: %d, want 200", res.StatusCode)
	}

	for _, remote := range []string{"127.0.0.1:5000", "127.8.9.10:1", "[::1]:5000"} {
		res, body := get("/dev/mailbox", remote)
		if res.StatusCode != 200 || !strings.Contains(body, `<a href="/dev/mailbox/7">Your &lt;certificate&gt;</a>`) {
			t.Errorf("GET /dev/mailbox from %s: %d\n%s", remote, res.StatusCode, body)
		}
	}
	res, body := get("/dev/mailbox/7", "127.0.0.1:5000")
	if res.StatusCode != 200 {
		t.Fatalf("GET /dev/mailbox/7: %d\n%s", res.StatusCode, body)
	}
	for _, want := range []string{
		`<a href="https://mailca.example/e/TOKEN">https://mailca.example/e/TOKEN</a>. Then &lt;b&gt;wait&lt;/b&gt;.`,
		`<iframe class="mail-html" sandbox="" src="/dev/mailbox/7/html"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /dev/mailbox/7 lacks %s\n%s", want, body)
		}
	}
	if strings.Contains(body, `href="javascript`) {
		t.Errorf("a javascript: URL became a link")
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "; frame-src 'self'") {
		t.Errorf("show page CSP %q lacks frame-src 'self'", csp)
	}
	res, body = get("/dev/mailbox/7/html", "[::1]:1")
	if res.StatusCode != 200 || body != box.msgs[0].HTML {
		t.Errorf("GET /dev/mailbox/7/html: %d %q", res.StatusCode, body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox; default-src 'none'; style-src 'unsafe-inline'") {
		t.Errorf("HTML part CSP %q", csp)
	}
	if xfo := res.Header.Get("X-Frame-Options"); xfo != "SAMEORIGIN" {
		t.Errorf("HTML part X-Frame-Options %q, want SAMEORIGIN", xfo)
	}
	for path, want := range map[string]int{"/dev/mailbox/8": 404, "/dev/mailbox/x": 404, "/dev/mailbox/99": 500} {
		if res, body := get(path, "127.0.0.1:1"); res.StatusCode != want || (want == 500 && strings.Contains(body, "fire")) {
			t.Errorf("GET %s: %d, want %d\n%s", path, res.StatusCode, want, body)
		}
	}
}

func TestNewNeedsService(t *testing.T) {
	if _, err := web.New(web.Config{}); err == nil {
		t.Errorf("New(Config{}) = nil error, want one: there is no enrol.Service")
	}
}

// TestAuditSaysFromWhere: the audit event of a transition made over the web
// names the client's address, and events of other origins do not.
func TestAuditSaysFromWhere(t *testing.T) {
	s := newServer(t, nil)
	req := formRequest("POST", "/e/"+s.formToken, url.Values{"f_given_name": {"Alice"}, "f_surname": {"A"}, "accept_terms": {"yes"}, "terms_version": {"1"}})
	req.RemoteAddr = "192.0.2.44:51234"
	if res, body := s.do(req); res.StatusCode != http.StatusOK {
		t.Fatalf("form: %d\n%s", res.StatusCode, body)
	}
	evs, err := s.db.AuditFilter(context.Background(), sqlite.AuditQuery{Action: "enrolment.submit"})
	if err != nil {
		t.Fatal(err)
	}
	var web, other int
	for _, e := range evs {
		if strings.HasSuffix(e.Detail, ", from 192.0.2.44") || e.Detail == "from 192.0.2.44" {
			web++
		} else if !strings.Contains(e.Detail, "from ") {
			other++
		}
	}
	if web != 1 || other != 1 { // Bob's submission was made in-process
		t.Errorf("submit events %+v: %d from the web request, %d without an origin; want 1 and 1", evs, web, other)
	}
}
