package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/auth"
)

var joinLinkRe = regexp.MustCompile(`<code class="join-link" id="join-link">https://mailca\.example/console/join/([A-Za-z0-9_-]+)</code>`)

func TestAccounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ann := e.account("ann@example.org", auth.Administrator)
	bob := e.account("bob@example.org", auth.Auditor)
	session := e.login("ann@example.org")
	bobSession := e.login("bob@example.org")

	_, body := e.get("/console/accounts", session)
	if !strings.Contains(body, "bob@example.org") || strings.Contains(body, `action="/console/accounts/`+strconv.FormatInt(ann.ID, 10)+`/role"`) {
		t.Errorf("accounts page: want bob listed and no role form for oneself")
	}

	// Invite: the join link is shown once, and works.
	res, body := e.post("/console/accounts", session, url.Values{"email": {"Carol@example.org"}, "role": {"officer"}, "policy": {"staff"}})
	m := joinLinkRe.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("invite = %d, want 200 with the join link\n%s", res.StatusCode, excerpt(body))
	}
	j, err := e.auth.OpenJoin(ctx, m[1])
	if err != nil || j.Email != "carol@example.org" || j.Role != auth.Officer || len(j.Policies) != 1 {
		t.Errorf("OpenJoin(shown link) = %+v, %v; want officer carol for staff", j, err)
	}
	if _, body := e.get("/console/accounts", session); strings.Contains(body, m[1]) {
		t.Errorf("the join link is shown again")
	}
	if strings.Contains(e.logs.String(), m[1]) {
		t.Errorf("the join link is in the log")
	}
	res, body = e.post("/console/accounts", session, url.Values{"email": {"not an address"}, "role": {"officer"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not an email address") || !strings.Contains(body, `value="not an address"`) {
		t.Errorf("invite with a bad address = %d, want 400 with the message and the form kept", res.StatusCode)
	}

	// Role change takes effect on bob's next request.
	bobID := strconv.FormatInt(bob.ID, 10)
	if res, _ := e.get("/console/accounts", bobSession); res.StatusCode != http.StatusForbidden {
		t.Fatalf("auditor on accounts = %d, want 403", res.StatusCode)
	}
	res, _ = e.post("/console/accounts/"+bobID+"/role", session, url.Values{"role": {"administrator"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("role change = %d, want 303", res.StatusCode)
	}
	if res, _ := e.get("/console/accounts", bobSession); res.StatusCode != http.StatusOK {
		t.Errorf("bob after becoming administrator = %d, want 200", res.StatusCode)
	}

	// Refused changes show the reason.
	res, body = e.post("/console/accounts/"+strconv.FormatInt(ann.ID, 10)+"/remove", session, nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "you cannot remove your own account") {
		t.Errorf("removing oneself = %d, want 403 with the reason\n%s", res.StatusCode, excerpt(body))
	}
	if res, _ := e.post("/console/accounts/999/remove", session, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("removing an unknown account = %d, want 404", res.StatusCode)
	}

	// Log out everywhere, then remove.
	if res, _ := e.post("/console/accounts/"+bobID+"/logout", session, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("log bob out everywhere = %d, want 303", res.StatusCode)
	}
	if res, _ := e.get("/console/", bobSession); res.StatusCode != http.StatusSeeOther {
		t.Errorf("bob's session after log out everywhere = %d, want the login redirect", res.StatusCode)
	}
	bobSession = e.login("bob@example.org")
	if res, _ := e.post("/console/accounts/"+bobID+"/remove", session, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("remove bob = %d, want 303", res.StatusCode)
	}
	if res, _ := e.get("/console/", bobSession); res.StatusCode != http.StatusSeeOther {
		t.Errorf("a removed account's session still works: %d", res.StatusCode)
	}
}
