package console_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/web/console"
)

// testChainPEM stands for the issuing chain of Config.ChainPEM.
const testChainPEM = "-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----\n"

// pagesEnv is an env with a template directory, a second policy
// "students", and sessions of an administrator, an officer limited to
// "staff" and an unlimited officer.
type pagesEnv struct {
	*env
	dir                   string // Config.TemplateDir
	admin, olga, amy      string // session tokens
	adminActor, olgaActor string
	amyActor              string
}

func newPagesEnv(t *testing.T, change ...func(*console.Config)) *pagesEnv {
	t.Helper()
	dir := t.TempDir()
	e := &pagesEnv{env: newEnv(t, func(c *console.Config) {
		c.TemplateDir, c.ChainPEM = dir, []byte(testChainPEM)
		for _, f := range change {
			f(c)
		}
	}), dir: dir}
	p := enrol.DefaultPolicy()
	p.Name = "students"
	if _, err := e.enrol.SavePolicy(context.Background(), "cli", p); err != nil {
		t.Fatalf("SavePolicy: %v", err)
	}
	e.account("admin@example.org", auth.Administrator)
	e.account("olga@example.org", auth.Officer, "staff")
	e.account("amy@example.org", auth.Officer)
	e.admin, e.olga, e.amy = e.login("admin@example.org"), e.login("olga@example.org"), e.login("amy@example.org")
	e.adminActor, e.olgaActor, e.amyActor = "console:admin@example.org", "console:olga@example.org", "console:amy@example.org"
	return e
}

// linkToken returns the token of the newest link emailed to to with the
// template.
func (e *pagesEnv) linkToken(to, template string) string {
	e.t.Helper()
	msgs, err := e.db.Messages(context.Background(), outbox.Filter{To: to, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range msgs { // newest first
		if m.Template == template && m.Data["Link"] != "" {
			l := m.Data["Link"]
			return l[strings.LastIndex(l, "/")+1:]
		}
	}
	e.t.Fatalf("no %s email to %s", template, to)
	return ""
}

// submitted invites mailbox under policy (as actor) and submits the form
// for them.
func (e *pagesEnv) submitted(actor, policy, mailbox string) *enrol.Enrolment {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.enrol.Invite(ctx, actor, policy, enrol.Invitee{Email: mailbox, GivenName: "Alice", Surname: "Liddell"}); err != nil {
		e.t.Fatalf("Invite(%s): %v", mailbox, err)
	}
	p, err := e.enrol.Policy(ctx, policy)
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := e.enrol.Submit(ctx, e.linkToken(mailbox, "invitation"), enrol.Application{GivenName: "Alice", Surname: "Liddell", AcceptTerms: true, TermsVersion: p.Terms.Version})
	if err != nil {
		e.t.Fatalf("Submit(%s): %v", mailbox, err)
	}
	return en
}

// issued takes mailbox under policy to an issued certificate.
func (e *pagesEnv) issued(policy, mailbox string) *enrol.Activation {
	e.t.Helper()
	ctx := context.Background()
	en := e.submitted("cli", policy, mailbox)
	if _, err := e.enrol.Approve(ctx, "cli:approver", en.ID); err != nil {
		e.t.Fatalf("Approve: %v", err)
	}
	a, err := e.enrol.Activate(ctx, e.linkToken(mailbox, "approved"), enrol.KeyServer, nil)
	if err != nil {
		e.t.Fatalf("Activate: %v", err)
	}
	return a
}

// upload posts a CSV file to the upload form.
func (e *pagesEnv) upload(session, policy, filename, body string) (*http.Response, string) {
	e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("policy", policy)
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		e.t.Fatal(err)
	}
	io.WriteString(fw, body)
	mw.Close()
	r := httptest.NewRequest(http.MethodPost, "/console/invitations/upload", &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.AddCookie(&http.Cookie{Name: "mailca_session", Value: session})
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := w.Result()
	out, _ := io.ReadAll(res.Body)
	return res, string(out)
}

// waitBatch waits for the import of batch id to end and returns it.
func (e *pagesEnv) waitBatch(id int64) *enrol.Batch {
	e.t.Helper()
	for range 2000 {
		b, err := e.db.Batch(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if b.State != "importing" {
			return b
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.t.Fatalf("batch %d is still importing", id)
	return nil
}

var dataID = regexp.MustCompile(`data-id="(\d+)"`)

// ids returns the data-id values of a page's rows, in order.
func ids(body string) []int64 {
	var out []int64
	for _, m := range dataID.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		out = append(out, n)
	}
	return out
}

// nextLink returns the href of the page's "next page" link, unescaped.
func nextLink(body string) string {
	m := regexp.MustCompile(`href="([^"]*)" rel="next"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

func wantStatus(t *testing.T, what string, res *http.Response, body string, want int) {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("%s: status %d, want %d; body:\n%s", what, res.StatusCode, want, body)
	}
}
