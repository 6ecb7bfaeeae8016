package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mail"
	"github.com/mailca/mailca/internal/metrics"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
)

// okSender accepts every message.
type okSender struct{}

func (okSender) Send(context.Context, string, []string, []byte) error { return nil }

// lastLink returns the token of the newest link mailed to addr under prefix.
func lastLink(t *testing.T, db *sqlite.DB, addr, prefix string) string {
	t.Helper()
	msgs, err := db.Messages(context.Background(), outbox.Filter{To: addr})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if l := m.Data["Link"]; strings.Contains(l, prefix) {
			return l[strings.LastIndex(l, "/")+1:]
		}
	}
	t.Fatalf("no %s link mailed to %s", prefix, addr)
	return ""
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// TestFlowMetrics runs an enrolment from invitation to certificate and the
// delivery of its email, and reads the counts back from /metrics.
func TestFlowMetrics(t *testing.T) {
	ctx := context.Background()
	m, err := metrics.New(metrics.Config{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	db := testkit.MustOpenDB(t)
	if err := m.WatchQueue(db); err != nil {
		t.Fatal(err)
	}
	hier := testkit.NewHierarchy(t, keys.ECDSAP256)
	engine, err := ca.New(ca.Config{Issuer: hier.Issuer, Store: db, Organization: testkit.Organization, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: engine, PublicURL: "https://certs.example.com", ServerKeyType: keys.ECDSAP256, Observer: m})
	p := enrol.DefaultPolicy()
	p.Name = "staff"
	if _, err := svc.SavePolicy(ctx, "test", p); err != nil {
		t.Fatal(err)
	}
	h, err := web.New(web.Config{Enrol: svc, Metrics: m.Handler(), Requests: m,
		Ready: []web.ReadyCheck{{Name: "database", Check: db.Ping}, {Name: "signer", Check: hier.Issuer.Probe}}})
	if err != nil {
		t.Fatal(err)
	}

	const addr = "alice@example.com"
	e, err := svc.Invite(ctx, "admin:root@example.com", "staff", enrol.Invitee{Email: addr})
	if err != nil {
		t.Fatal(err)
	}
	formToken := lastLink(t, db, addr, "/e/")
	// A request on a link path: the histogram must show its pattern only.
	if code, _ := get(t, h, "/e/"+formToken); code != http.StatusOK {
		t.Fatalf("GET /e/<token> = %d, want 200", code)
	}
	if _, err := svc.Submit(ctx, formToken, enrol.Application{GivenName: "Alice", Surname: "Liddell", AcceptTerms: true, TermsVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "admin:ra@example.com", e.ID); err != nil {
		t.Fatal(err)
	}
	actToken := lastLink(t, db, addr, "/a/")
	get(t, h, "/a/"+actToken)
	a, err := svc.Activate(ctx, actToken, enrol.KeyServer, nil)
	if err != nil {
		t.Fatal(err)
	}
	serial := ca.SerialHex(a.Cert.Cert.SerialNumber)

	tmpl, err := outbox.NewTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	w := outbox.NewWorker(outbox.Config{Store: db, Templates: tmpl, Sender: okSender{},
		From: mail.Address{Addr: "ca@example.com"}, Observer: m})
	sent, err := w.RunOnce(ctx)
	if err != nil || sent == 0 {
		t.Fatalf("RunOnce = %d, %v; want some sent", sent, err)
	}

	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz = %d %q, want 200", code, body)
	}
	code, text := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`mailca_certificates_issued_total{profile="` + ca.DefaultProfile + `"} 1`,
		"mailca_lint_refusals_total 0",
		"mailca_enrolments_invited_total 1",
		"mailca_enrolments_submitted_total 1",
		"mailca_enrolments_approved_total 1",
		"mailca_enrolments_rejected_total 0",
		`mailca_mail_queue_depth{state="pending"} 0`,
		`mailca_mail_queue_depth{state="failed"} 0`,
		"mailca_mail_sent_total " + strconv.Itoa(sent),
		`mailca_mail_failures_total{kind="permanent"} 0`,
		`mailca_mail_failures_total{kind="temporary"} 0`,
		`mailca_http_request_duration_seconds_count{method="GET",route="/e/{token}",status="2xx"} 1`,
		`mailca_http_request_duration_seconds_count{method="GET",route="/healthz",status="2xx"} 1`,
		`mailca_http_request_duration_seconds_count{method="GET",route="/readyz",status="2xx"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Nothing that names a person, a certificate or a link.
	tokenPath := regexp.MustCompile(`/[ea]/[A-Za-z0-9_-]`)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case strings.Contains(line, "@"):
			t.Errorf("metric line holds a mailbox: %s", line)
		case tokenPath.MatchString(line):
			t.Errorf("metric line holds a link path: %s", line)
		case strings.Contains(strings.ToLower(line), strings.ToLower(serial)):
			t.Errorf("metric line holds the serial: %s", line)
		case strings.Contains(line, formToken) || strings.Contains(line, actToken):
			t.Errorf("metric line holds a token: %s", line)
		}
	}
}

// TestReadyzDatabaseClosed checks that /readyz says which dependency is
// missing and no more.
func TestReadyzDatabaseClosed(t *testing.T) {
	db := testkit.MustOpenDB(t)
	hier := testkit.NewHierarchy(t, keys.ECDSAP256)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, hier, db)})
	h, err := web.New(web.Config{Enrol: svc,
		Ready: []web.ReadyCheck{{Name: "database", Check: db.Ping}, {Name: "signer", Check: hier.Issuer.Probe}}})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, h, "/readyz"); code != http.StatusOK {
		t.Fatalf("GET /readyz with the database open = %d, want 200", code)
	}
	db.Close()
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || body != "database unavailable\n" {
		t.Errorf("GET /readyz with the database closed = %d %q, want 503 \"database unavailable\\n\"", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz with the database closed = %d, want 200", code)
	}
}
