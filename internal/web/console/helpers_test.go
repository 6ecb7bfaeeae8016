package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
	"github.com/mailca/mailca/internal/web/console"
)

// password is every test account's password.
const password = "correct horse battery staple"

// clock is a settable clock shared by the database, auth and the console.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the console on a real SQLite database and a real auth.Service,
// served through the whole server handler of package web.
type env struct {
	t     *testing.T
	db    *sqlite.DB
	auth  *auth.Service
	enrol *enrol.Service
	clock *clock
	con   *console.Console
	h     http.Handler // web.New with the console mounted
	logs  *testkit.LogBuffer
	// secrets are the TOTP secrets of the accounts made by account.
	secrets map[string]string
}

// newEnv returns an env; change adjusts the console's configuration.
func newEnv(t *testing.T, change ...func(*console.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)}
	db.SetClock(clk.Now)
	svc, err := auth.New(auth.Config{Store: db, Now: clk.Now, Issuer: "mailca test"})
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	hier := testkit.NewHierarchy(t, keys.ECDSAP256)
	enr := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, hier, db), PublicURL: "https://mailca.example", ServerKeyType: keys.ECDSAP256, Now: clk.Now})
	p := enrol.DefaultPolicy()
	p.Name = "staff"
	if _, err := enr.SavePolicy(ctx, "staff", p); err != nil {
		t.Fatalf("SavePolicy: %v", err)
	}
	logs := &testkit.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := console.Config{Auth: svc, Enrol: enr, Store: db, PublicURL: "https://mailca.example", Logger: log, Now: clk.Now,
		Mail: console.MailSettings{Host: "smtp.example", Port: 587, TLS: "starttls", From: "ca@example.org"}}
	for _, f := range change {
		f(&cfg)
	}
	con, err := console.New(cfg)
	if err != nil {
		t.Fatalf("console.New: %v", err)
	}
	h, err := web.New(web.Config{Enrol: enr, Logger: log, Console: con.Handler()})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	return &env{t: t, db: db, auth: svc, enrol: enr, clock: clk, con: con, h: h, logs: logs, secrets: map[string]string{}}
}

// account creates an account through the service, as its join link would:
// the first one with the setup link, the others invited.
func (e *env) account(email string, role auth.Role, policies ...string) *auth.Account {
	e.t.Helper()
	ctx := context.Background()
	var token string
	var err error
	if empty, _ := e.auth.NeedsSetup(ctx); empty {
		if role != auth.Administrator {
			e.t.Fatalf("the first account must be an administrator")
		}
		token, err = e.auth.SetupLink(ctx)
	} else {
		if role == auth.Officer && len(policies) == 0 {
			policies = []string{auth.AllPolicies} // an officer of every policy
		}
		token, err = e.auth.InviteAccount(ctx, "cli", email, role, policies)
	}
	if err != nil {
		e.t.Fatalf("making a join link for %s: %v", email, err)
	}
	key, err := e.auth.NewTOTPKey(token, email)
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := e.auth.Join(ctx, token, email, "Test "+string(role), password, key.Sealed, e.code(key.Secret), "127.0.0.1")
	if err != nil {
		e.t.Fatalf("Join(%s): %v", email, err)
	}
	e.secrets[email] = key.Secret
	return a
}

// code returns the TOTP code of secret at the clock's time.
func (e *env) code(secret string) string {
	e.t.Helper()
	c, err := totp.GenerateCode(secret, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// login starts a session for an account made by account and returns its
// token. The clock moves on a TOTP period first: a code is accepted once.
func (e *env) login(email string) string {
	e.t.Helper()
	e.clock.Add(30 * time.Second)
	token, _, err := e.auth.Login(context.Background(), email, password, e.code(e.secrets[email]), "127.0.0.1")
	if err != nil {
		e.t.Fatalf("Login(%s): %v", email, err)
	}
	return token
}

// request is one request to the server.
type request struct {
	method, path string
	form         url.Values
	session      string // session token for the cookie; "" for none
	header       map[string]string
	remote       string // client address; default 192.0.2.1:1234
}

// do serves req and returns the response with its body read.
func (e *env) do(req request) (*http.Response, string) {
	e.t.Helper()
	var body io.Reader
	if req.form != nil {
		body = strings.NewReader(req.form.Encode())
	}
	r := httptest.NewRequest(req.method, req.path, body)
	if req.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if req.session != "" {
		r.AddCookie(&http.Cookie{Name: "mailca_session", Value: req.session})
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	if req.remote != "" {
		r.RemoteAddr = req.remote
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// get is a GET with a session.
func (e *env) get(path, session string) (*http.Response, string) {
	e.t.Helper()
	return e.do(request{method: http.MethodGet, path: path, session: session})
}

// post is a same-origin form POST with a session.
func (e *env) post(path, session string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	return e.do(request{method: http.MethodPost, path: path, session: session, form: form})
}

// cookie returns the value of the named cookie res sets, and whether it
// sets it.
func cookie(res *http.Response, name string) (*http.Cookie, bool) {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}
