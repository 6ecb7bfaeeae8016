package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/web/console"
)

var cancelRe = regexp.MustCompile(`action="/console/accounts/invitations/(\d+)/cancel"`)

// invite makes an account invitation through the accounts page with
// session and returns its token.
func (e *env) invite(session, email, role string, policies ...string) string {
	e.t.Helper()
	res, body := e.post("/console/accounts", session, url.Values{"email": {email}, "role": {role}, "policy": policies})
	m := joinLinkRe.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		e.t.Fatalf("invite %s = %d, want 200 with the join link\n%s", email, res.StatusCode, excerpt(body))
	}
	return m[1]
}

// TestAccountInvitations checks that pending invitations are listed and
// can be cancelled, and that those of an administrator who is removed or
// demoted die with its power.
func TestAccountInvitations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.account("ann@example.org", auth.Administrator)
	dan := e.account("dan@example.org", auth.Administrator)
	fay := e.account("fay@example.org", auth.Administrator)
	ann, danS, fayS := e.login("ann@example.org"), e.login("dan@example.org"), e.login("fay@example.org")

	carol := e.invite(danS, "carol@example.org", "officer", auth.AllPolicies)
	_, body := e.get("/console/accounts", ann)
	m := cancelRe.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "carol@example.org") || !strings.Contains(body, "console:dan@example.org") || !strings.Contains(body, "all policies") {
		t.Fatalf("accounts page does not list carol's invitation by dan with a cancel button\n%s", excerpt(body))
	}
	if res, _ := e.post("/console/accounts/invitations/"+m[1]+"/cancel", ann, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel = %d, want 303", res.StatusCode)
	}
	if _, err := e.auth.OpenJoin(ctx, carol); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(cancelled invitation) = %v, want ErrBadLink", err)
	}
	if res, _ := e.post("/console/accounts/invitations/"+m[1]+"/cancel", ann, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("cancel twice = %d, want 404", res.StatusCode)
	}
	if got := e.auditActors("account.invite-cancel"); len(got) != 1 || got[0] != "console:ann@example.org" {
		t.Errorf("account.invite-cancel actors = %q, want ann", got)
	}

	// Demoting dan, and removing fay, kills the links they made.
	erin := e.invite(danS, "erin@example.org", "auditor")
	gus := e.invite(fayS, "gus@example.org", "auditor")
	kept := e.invite(ann, "hal@example.org", "auditor")
	if res, _ := e.post("/console/accounts/"+strconv.FormatInt(dan.ID, 10)+"/role", ann, url.Values{"role": {"auditor"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("demote dan = %d, want 303", res.StatusCode)
	}
	if res, _ := e.post("/console/accounts/"+strconv.FormatInt(fay.ID, 10)+"/remove", ann, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove fay = %d, want 303", res.StatusCode)
	}
	for name, token := range map[string]string{"erin (by demoted dan)": erin, "gus (by removed fay)": gus} {
		if _, err := e.auth.OpenJoin(ctx, token); !errors.Is(err, auth.ErrBadLink) {
			t.Errorf("OpenJoin(%s) = %v, want ErrBadLink", name, err)
		}
	}
	if _, err := e.auth.OpenJoin(ctx, kept); err != nil {
		t.Errorf("OpenJoin(hal, by ann) = %v, want it kept", err)
	}
}

// TestOfficerNeedsPolicies checks that an officer's scope is an explicit
// choice: none ticked is refused, "all policies" is every policy.
func TestOfficerNeedsPolicies(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	ann := e.login("ann@example.org")
	res, body := e.post("/console/accounts", ann, url.Values{"email": {"olga@example.org"}, "role": {"officer"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "all policies") {
		t.Errorf("inviting an officer with no policy = %d, want 400 asking for a choice\n%s", res.StatusCode, excerpt(body))
	}
	token := e.invite(ann, "olga@example.org", "officer", auth.AllPolicies)
	j, err := e.auth.OpenJoin(context.Background(), token)
	if err != nil || len(j.Policies) != 1 || j.Policies[0] != auth.AllPolicies {
		t.Errorf("OpenJoin = %+v, %v; want an officer of all policies", j, err)
	}
}

// TestUnlock checks that an administrator can lift a lockout.
func TestUnlock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.account("ann@example.org", auth.Administrator)
	bob := e.account("bob@example.org", auth.Auditor)
	ann := e.login("ann@example.org")
	for i := range 5 {
		if _, _, err := e.auth.Login(ctx, "bob@example.org", "not the password", "000000", "198.51.100."+strconv.Itoa(i+1)); !errors.Is(err, auth.ErrLoginFailed) {
			t.Fatalf("wrong login = %v", err)
		}
	}
	e.clock.Add(30 * time.Second)
	if _, _, err := e.auth.Login(ctx, "bob@example.org", password, e.code(e.secrets["bob@example.org"]), "198.51.100.9"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Fatalf("login while locked = %v, want ErrLoginFailed", err)
	}
	bobID := strconv.FormatInt(bob.ID, 10)
	_, body := e.get("/console/accounts", ann)
	if !strings.Contains(body, "locked until") || !strings.Contains(body, `action="/console/accounts/`+bobID+`/unlock"`) {
		t.Fatalf("accounts page does not show bob locked with an unlock button\n%s", excerpt(body))
	}
	if res, _ := e.post("/console/accounts/"+bobID+"/unlock", ann, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("unlock = %d, want 303", res.StatusCode)
	}
	e.login("bob@example.org") // fails the test if still locked
	if got := e.auditActors("account.unlock"); len(got) != 1 || got[0] != "console:ann@example.org" {
		t.Errorf("account.unlock actors = %q, want ann", got)
	}
}

// TestLoginEndsPreviousSession checks that logging in again in a browser
// ends the session its cookie named.
func TestLoginEndsPreviousSession(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	old := e.login("ann@example.org")
	e.clock.Add(30 * time.Second)
	res, _ := e.post("/console/login", old, url.Values{"email": {"ann@example.org"}, "password": {password}, "code": {e.code(e.secrets["ann@example.org"])}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login = %d, want 303", res.StatusCode)
	}
	if ck, ok := cookie(res, "mailca_session"); !ok || ck.Value == old {
		t.Fatalf("login did not set a new session cookie")
	}
	if res, _ := e.get("/console/", old); res.StatusCode != http.StatusSeeOther {
		t.Errorf("the previous session after a new login = %d, want the login redirect", res.StatusCode)
	}
}

// TestLoginClientAddressBehindProxy checks that the login throttle and
// the audit log use the address a trusted proxy forwards, and ignore the
// header from anyone else.
func TestLoginClientAddressBehindProxy(t *testing.T) {
	e := newEnv(t, func(c *console.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	e.account("ann@example.org", auth.Administrator)
	form := url.Values{"email": {"nobody@example.org"}, "password": {"wrong password!"}, "code": {"000000"}}
	login := func(remote, xff string) int {
		res, _ := e.do(request{method: http.MethodPost, path: "/console/login", form: form, remote: remote, header: map[string]string{"X-Forwarded-For": xff}})
		return res.StatusCode
	}
	// Through the proxy, each client has its own throttle bucket.
	for i := range 10 {
		if got := login("10.0.0.1:3000", "203.0.113.7"); got != http.StatusUnauthorized {
			t.Fatalf("attempt %d of client 1 = %d, want 401", i+1, got)
		}
	}
	if got := login("10.0.0.1:3000", "203.0.113.7"); got != http.StatusTooManyRequests {
		t.Errorf("attempt 11 of client 1 = %d, want 429", got)
	}
	if got := login("10.0.0.1:3000", "203.0.113.8"); got != http.StatusUnauthorized {
		t.Errorf("client 2 through the same proxy = %d, want 401 (its own bucket)", got)
	}
	// A forged header from a client that is no proxy is ignored.
	login("192.0.2.50:4000", "203.0.113.99")
	evs, err := e.db.AuditFilter(context.Background(), store.AuditQuery{Action: "account.login-failed"})
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	for _, ev := range evs {
		from = append(from, ev.Detail)
	}
	all := strings.Join(from, "\n")
	if !strings.Contains(all, "from 203.0.113.7") || !strings.Contains(all, "from 192.0.2.50") || strings.Contains(all, "203.0.113.99") || strings.Contains(all, "from 10.0.0.1") {
		t.Errorf("failed-login events name %q; want the forwarded client, the direct client, and not the forged or proxy address", from)
	}
}
