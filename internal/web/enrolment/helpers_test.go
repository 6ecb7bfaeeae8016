package enrolment_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
)

// env is a server on a real database and issuing engine.
type env struct {
	t    *testing.T
	db   *sqlite.DB
	svc  *enrol.Service
	h    http.Handler
	logs *testkit.LogBuffer
	key  enrol.ReferralKey
}

// testPolicy is the default policy named "test" with a required custom
// field and a read-only one.
func testPolicy(name string) *enrol.Policy {
	p := enrol.DefaultPolicy()
	p.Name = name
	p.Fields = append(p.Fields,
		enrol.Field{Name: "department", Label: "Department", Required: true, Editable: true, Help: "As in the staff directory."},
		enrol.Field{Name: "employee_id", Label: "Employee number"},
	)
	return p
}

// newEnv returns a server whose template directory is dir ("" for none),
// with the policies "test" (manual approval), "auto" (automatic), "ref"
// (referrals) and "open" (open self-enrolment for example.com).
func newEnv(t *testing.T, dir string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	eng := testkit.NewEngine(t, h, db)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: eng, PublicURL: "https://mailca.example", ServerKeyType: keys.ECDSAP256})

	secret := make([]byte, 32)
	rand.Read(secret)
	key := enrol.ReferralKey{ID: "site", Secret: base64.RawURLEncoding.EncodeToString(secret)}
	auto := testPolicy("auto")
	auto.Approval.Mode = enrol.ApproveAutomatic
	ref := testPolicy("ref")
	ref.Channels.Referral, ref.ReferralKeys = true, []enrol.ReferralKey{key}
	open := testPolicy("open")
	open.Channels = enrol.Channels{Open: true}
	open.AllowedDomains = []string{"example.com"}
	open.Description = "Certificates for Example staff."
	for _, p := range []*enrol.Policy{testPolicy("test"), auto, ref, open} {
		if _, err := svc.SavePolicy(ctx, "test", p); err != nil {
			t.Fatalf("SavePolicy(%s): %v", p.Name, err)
		}
	}
	logs := &testkit.LogBuffer{}
	chain := h.Issuer.ChainPEM()
	handler, err := web.New(web.Config{
		Enrol: svc, TemplateDir: dir, ChainPEM: chain,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	return &env{t: t, db: db, svc: svc, h: handler, logs: logs, key: key}
}

// invite invites addr under policy and returns the enrolment and its link token.
func (e *env) invite(policy, addr string) (*enrol.Enrolment, string) {
	e.t.Helper()
	en, err := e.svc.Invite(context.Background(), "admin:test", policy, enrol.Invitee{
		Email: addr, GivenName: "Alice", Surname: "Liddell", Fields: map[string]string{"employee_id": "E-1234"},
	})
	if err != nil {
		e.t.Fatalf("Invite(%s): %v", addr, err)
	}
	return en, e.token(addr, "/e/")
}

// token returns the token of the newest link to addr whose path starts with prefix.
func (e *env) token(addr, prefix string) string {
	e.t.Helper()
	msgs, err := e.db.Messages(context.Background(), outbox.Filter{To: addr})
	if err != nil {
		e.t.Fatalf("Messages: %v", err)
	}
	for _, m := range msgs {
		u, err := url.Parse(m.Data["Link"])
		if err == nil {
			if tok, ok := strings.CutPrefix(u.Path, prefix); ok {
				return tok
			}
		}
	}
	e.t.Fatalf("no %s link to %s in the outbox", prefix, addr)
	return ""
}

// do serves req and returns the response and its body.
func (e *env) do(req *http.Request) (*http.Response, string) {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (e *env) get(target string) (*http.Response, string) {
	e.t.Helper()
	return e.do(httptest.NewRequest(http.MethodGet, target, nil))
}

// post sends a URL-encoded form as a same-origin browser would.
func (e *env) post(target string, form url.Values) (*http.Response, string) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.do(req)
}

// postMultipart sends a multipart form; file, when not nil, is csr_file.
func (e *env) postMultipart(target string, fields map[string]string, file []byte) (*http.Response, string) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("csr_file", "request.csr")
		fw.Write(file)
	}
	mw.Close()
	req := httptest.NewRequest(http.MethodPost, target, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.do(req)
}

// certCount returns how many certificate rows there are in all.
func (e *env) certCount() int {
	e.t.Helper()
	counts, err := e.db.CountCertificates(context.Background())
	if err != nil {
		e.t.Fatalf("CountCertificates: %v", err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

func validForm() url.Values {
	return url.Values{
		"f_given_name": {"Alice"}, "f_surname": {"Liddell"}, "f_department": {"Research-Lab-7"},
		"accept_terms": {"yes"}, "terms_version": {"1"},
	}
}

// find returns the first submatch of pattern in body, HTML-unescaped.
func find(t *testing.T, body, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page does not match %s:\n%s", pattern, body)
	}
	return html.UnescapeString(m[1])
}

func wantStatus(t *testing.T, what string, res *http.Response, body string, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s: status %d, want %d\n%s", what, res.StatusCode, want, body)
	}
}

func wantContains(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: page lacks %q\n%s", what, w, body)
		}
	}
}

func outboxTo(addr string) outbox.Filter { return outbox.Filter{To: addr} }
