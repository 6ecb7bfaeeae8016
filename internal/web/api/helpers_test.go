package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
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

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
	"github.com/mailca/mailca/internal/web/api"
)

// env is the whole web server, enrolment pages and API, on a real
// database and issuing engine.
type env struct {
	t    *testing.T
	db   *sqlite.DB
	svc  *enrol.Service
	keys *apikey.Service
	h    http.Handler
	doc  *openapi3.T
	logs *testkit.LogBuffer

	mu     sync.Mutex
	offset time.Duration // added to the keys' clock, to expire them
}

func init() {
	openapi3filter.RegisterBodyDecoder("application/x-pem-file", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/pkix-cert", openapi3filter.FileBodyDecoder)
}

// newEnv returns a server with the policies "test" (manual approval,
// referrals with key "site") and "other" (manual approval).
func newEnv(t *testing.T, opts ...func(*api.Config)) *env {
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
	e := &env{t: t, db: db, svc: svc, logs: &testkit.LogBuffer{}}
	e.keys = apikey.NewService(db, func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return time.Now().Add(e.offset)
	})

	secret := make([]byte, 32)
	rand.Read(secret)
	test := enrol.DefaultPolicy()
	test.Name = "test"
	test.Channels.Referral = true
	test.ReferralKeys = []enrol.ReferralKey{{ID: "site", Secret: base64.RawURLEncoding.EncodeToString(secret)}}
	test.Fields = append(test.Fields, enrol.Field{Name: "department", Label: "Department", Editable: true})
	other := enrol.DefaultPolicy()
	other.Name = "other"
	for _, p := range []*enrol.Policy{test, other} {
		if _, err := svc.SavePolicy(ctx, "test", p); err != nil {
			t.Fatalf("SavePolicy: %v", err)
		}
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := api.Config{Enrol: svc, Keys: e.keys, Store: db, PublicURL: "https://mailca.example", ChainPEM: h.Issuer.ChainPEM(), Logger: logger,
		Rate: 1000, Burst: 1000}
	for _, o := range opts {
		o(&cfg)
	}
	ah, err := api.New(cfg)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	e.h, err = web.New(web.Config{Enrol: svc, ChainPEM: h.Issuer.ChainPEM(), Logger: logger, API: ah})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	raw, err := api.Document()
	if err != nil {
		t.Fatalf("Document: %v", err)
	}
	loader := openapi3.NewLoader()
	if e.doc, err = loader.LoadFromData(raw); err != nil {
		t.Fatalf("loading the OpenAPI document: %v", err)
	}
	return e
}

// key creates a key with the given scopes (and policies) and returns its
// secret form.
func (e *env) key(name string, scopes []apikey.Scope, policies ...string) string {
	e.t.Helper()
	_, tok, err := e.keys.Create(context.Background(), "test", apikey.CreateRequest{Name: name, Scopes: scopes, Policies: policies})
	if err != nil {
		e.t.Fatalf("Create(%s): %v", name, err)
	}
	return tok
}

// resp is an API response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, r.body)
	}
}

// problem decodes a problem response and checks its status and kind.
func (r resp) problem(t *testing.T, what string, status int, kind string) api.Problem {
	t.Helper()
	var p api.Problem
	if r.status != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	r.json(t, &p)
	if p.Type != api.ProblemBase+kind || p.Status != status || p.Title == "" {
		t.Fatalf("%s: problem %+v, want type %s%s", what, p, api.ProblemBase, kind)
	}
	return p
}

// call sends a request as an API client would (no Origin, no cookies)
// and validates the response against the OpenAPI document.
func (e *env) call(token, method, target, contentType string, body io.Reader) resp {
	e.t.Helper()
	req := httptest.NewRequest(method, target, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, body: b}
	e.validate(req, out)
	return out
}

func (e *env) get(token, target string) resp { return e.call(token, "GET", target, "", nil) }

func (e *env) post(token, target string, v any) resp {
	e.t.Helper()
	if v == nil {
		return e.call(token, "POST", target, "", nil)
	}
	b, _ := json.Marshal(v)
	return e.call(token, "POST", target, "application/json", bytes.NewReader(b))
}

// validate checks a response against the document's operation for the
// request, when there is one.
func (e *env) validate(req *http.Request, r resp) {
	e.t.Helper()
	path, ok := strings.CutPrefix(req.URL.Path, api.Prefix)
	if !ok {
		return
	}
	tmpl, item, params := e.findPath(path)
	if item == nil {
		return // no such route: the 404 problem is checked by the tests
	}
	op := item.GetOperation(req.Method)
	if op == nil {
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params,
		Route: &routers.Route{Spec: e.doc, Path: tmpl, PathItem: item, Method: req.Method, Operation: op}}
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
	if err != nil {
		e.t.Errorf("%s %s: response %d does not match the OpenAPI document: %v\n%s", req.Method, req.URL.Path, r.status, err, r.body)
	}
}

// findPath finds the document's path template matching path.
func (e *env) findPath(path string) (string, *openapi3.PathItem, map[string]string) {
	segs := strings.Split(path, "/")
	for tmpl, item := range e.doc.Paths.Map() {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		params := map[string]string{}
		match := true
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") {
				params[strings.Trim(ts[i], "{}")], _ = url.PathUnescape(segs[i])
				continue
			}
			if ts[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			return tmpl, item, params
		}
	}
	return "", nil, nil
}

// token returns the newest link token to addr whose path starts with prefix.
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

// form posts a form to the enrolment pages as a browser on the same site.
func (e *env) form(target string, form url.Values) (int, string) {
	e.t.Helper()
	req := httptest.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// enrolment drives one person with the service directly up to state:
// invited, submitted or issued. It returns the enrolment.
func (e *env) enrolment(addr string, state enrol.State) *enrol.Enrolment {
	e.t.Helper()
	ctx := context.Background()
	en, err := e.svc.Invite(ctx, "admin:test", "test", enrol.Invitee{Email: addr, GivenName: "Ann", Surname: "Lee"})
	if err != nil {
		e.t.Fatalf("Invite: %v", err)
	}
	if state == enrol.Invited {
		return en
	}
	if _, err := e.svc.Submit(ctx, e.token(addr, "/e/"), enrol.Application{GivenName: "Ann", Surname: "Lee", AcceptTerms: true, TermsVersion: "1"}); err != nil {
		e.t.Fatalf("Submit: %v", err)
	}
	if state == enrol.Submitted {
		en, _ = e.svc.Enrolment(ctx, en.ID)
		return en
	}
	if _, err := e.svc.Approve(ctx, "admin:approver", en.ID); err != nil {
		e.t.Fatalf("Approve: %v", err)
	}
	if _, err := e.svc.Activate(ctx, e.token(addr, "/a/"), enrol.KeyServer, nil); err != nil {
		e.t.Fatalf("Activate: %v", err)
	}
	en, _ = e.svc.Enrolment(ctx, en.ID)
	return en
}

func (e *env) countEnrolments() int {
	e.t.Helper()
	counts, err := e.db.CountEnrolments(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}
