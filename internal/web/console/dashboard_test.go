package console_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
)

// count returns the number in the dashboard's card of state.
func count(t *testing.T, body, state string) string {
	t.Helper()
	m := regexp.MustCompile(`id="count-` + state + `">(\d+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("dashboard has no count for %s", state)
	}
	return m[1]
}

func TestDashboard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.account("ann@example.org", auth.Administrator)
	e.account("olga@example.org", auth.Officer, "guests")
	e.account("otto@example.org", auth.Officer)
	p := enrol.DefaultPolicy()
	p.Name = "guests"
	if _, err := e.enrol.SavePolicy(ctx, "guests", p); err != nil {
		t.Fatal(err)
	}
	for _, inv := range []struct{ policy, email string }{
		{"staff", "a@example.com"}, {"staff", "b@example.com"}, {"staff", "c@example.com"}, {"guests", "d@example.com"},
	} {
		if _, err := e.enrol.Invite(ctx, "cli", inv.policy, enrol.Invitee{Email: inv.email}); err != nil {
			t.Fatal(err)
		}
	}
	en, err := e.enrol.Enrolments(ctx, enrol.Filter{Policy: "staff"})
	if err != nil || len(en) == 0 {
		t.Fatalf("Enrolments: %v", err)
	}
	if err := e.enrol.Cancel(ctx, "cli", en[0].ID, "left"); err != nil {
		t.Fatal(err)
	}
	msgs, err := e.db.Messages(ctx, outbox.Filter{To: "b@example.com"})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Messages: %v, %d", err, len(msgs))
	}
	if err := e.db.MarkFailed(ctx, msgs[0].ID, "550 5.1.1 no such user"); err != nil {
		t.Fatal(err)
	}

	res, body := e.get("/console/", e.login("ann@example.org"))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("dashboard = %d\n%s", res.StatusCode, excerpt(body))
	}
	for state, want := range map[string]string{"invited": "3", "cancelled": "1", "issued": "0", "total": "4"} {
		if got := count(t, body, state); got != want {
			t.Errorf("administrator's count of %s = %s, want %s", state, got, want)
		}
	}
	for _, want := range []string{
		`<th scope="row">staff</th>`, `<th scope="row">guests</th>`, // per policy
		"550 5.1.1 no such user", "b@example.com", // the delivery problem
		"enrolment.cancel", // recent activity
	} {
		if !strings.Contains(body, want) {
			t.Errorf("administrator's dashboard lacks %q", want)
		}
	}

	// An officer of one policy sees its counts only, and no audit log.
	_, body = e.get("/console/", e.login("olga@example.org"))
	if got := count(t, body, "invited"); got != "1" {
		t.Errorf("guests officer's count of invited = %s, want 1", got)
	}
	if strings.Contains(body, `<th scope="row">staff</th>`) || strings.Contains(body, "enrolment.cancel") || strings.Contains(body, "b@example.com") {
		t.Errorf("guests officer's dashboard shows another policy, the audit log or its mail:\n%s", excerpt(body))
	}
	// An officer of every policy sees every count, but not the audit log.
	_, body = e.get("/console/", e.login("otto@example.org"))
	if got := count(t, body, "invited"); got != "3" {
		t.Errorf("officer's count of invited = %s, want 3", got)
	}
	if strings.Contains(body, "Recent activity") {
		t.Errorf("officer sees the recent activity of the audit log")
	}
}

func TestNavigationShowsWhatTheRoleMayDo(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	e.account("aud@example.org", auth.Auditor)
	e.account("off@example.org", auth.Officer)
	tests := []struct {
		email     string
		want, not []string
	}{
		{"ann@example.org", []string{`href="/console/audit"`, `href="/console/accounts"`, `href="/console/mail"`}, nil},
		{"aud@example.org", []string{`href="/console/audit"`}, []string{`href="/console/accounts"`, `href="/console/mail"`}},
		{"off@example.org", nil, []string{`href="/console/audit"`, `href="/console/accounts"`, `href="/console/mail"`}},
	}
	for _, tt := range tests {
		_, body := e.get("/console/", e.login(tt.email))
		nav := body[strings.Index(body, "<nav"):strings.Index(body, "</nav>")]
		if !strings.Contains(nav, `href="/console/" aria-current="page"`) {
			t.Errorf("%s: the dashboard link is not marked current:\n%s", tt.email, nav)
		}
		for _, w := range tt.want {
			if !strings.Contains(nav, w) {
				t.Errorf("%s: navigation lacks %s", tt.email, w)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(nav, w) {
				t.Errorf("%s: navigation offers %s", tt.email, w)
			}
		}
	}
}
