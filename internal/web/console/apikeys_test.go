package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/store"
)

var apiKeyRE = regexp.MustCompile(`mca_[0-9a-f]{12}_[A-Za-z0-9_-]{43}`)

// auditActors returns the actors of the audit events with action.
func (e *env) auditActors(action string) []string {
	e.t.Helper()
	evs, err := e.db.AuditFilter(context.Background(), store.AuditQuery{Action: action})
	if err != nil {
		e.t.Fatalf("AuditFilter(%s): %v", action, err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Actor)
	}
	return out
}

// TestAPIKeyLifecycle makes a key in the console, checks it is shown once
// and works, then revokes it.
func TestAPIKeyLifecycle(t *testing.T) {
	e := newPagesEnv(t)
	ctx := context.Background()
	keys := apikey.NewService(e.db, e.clock.Now)

	res, body := e.post("/console/apikeys", e.admin, url.Values{
		"name": {"crm"}, "scope": {"invitations:write", "invitations:read"}, "policy": {"staff"}, "expires": {"90d"},
	})
	wantStatus(t, "creating a key", res, body, http.StatusOK)
	token := apiKeyRE.FindString(body)
	if token == "" {
		t.Fatalf("the creation page shows no key:\n%s", excerpt(body))
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("creation page Cache-Control = %q, want no-store", got)
	}
	if loc := res.Header.Get("Location"); loc != "" {
		t.Errorf("creation answered with Location %q, want the page itself", loc)
	}
	for _, ck := range res.Cookies() {
		if strings.Contains(ck.Value, token[len(token)-20:]) {
			t.Errorf("cookie %s carries the key", ck.Name)
		}
	}

	k, err := keys.Authenticate(ctx, token)
	if err != nil {
		t.Fatalf("Authenticate(the key shown) = %v", err)
	}
	wantScopes := []apikey.Scope{apikey.InvitationsRead, apikey.InvitationsWrite}
	if k.Name != "crm" || !slices.Equal(k.Scopes, wantScopes) || !slices.Equal(k.Policies, []string{"staff"}) ||
		k.CreatedBy != e.adminActor || !k.ExpiresAt.Equal(e.clock.Now().Add(90*24*time.Hour)) {
		t.Errorf("key = %+v, want crm with %v on staff by %s, expiring in 90 days", k, wantScopes, e.adminActor)
	}
	if got := e.auditActors("apikey.create"); !slices.Equal(got, []string{e.adminActor}) {
		t.Errorf("apikey.create events by %v, want one by %s", got, e.adminActor)
	}

	// The list names the key but never shows it again.
	res, body = e.get("/console/apikeys", e.admin)
	wantStatus(t, "the key list", res, body, http.StatusOK)
	if !strings.Contains(body, "crm") || !strings.Contains(body, k.ID) || !strings.Contains(body, "invitations:write") {
		t.Errorf("the key list does not show the key crm:\n%s", excerpt(body))
	}
	if apiKeyRE.MatchString(body) {
		t.Errorf("the key list shows a key's secret form")
	}
	if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), token[len(token)-20:]) {
		t.Errorf("the log holds the key")
	}

	// Revoking it makes the API refuse it.
	res, body = e.post("/console/apikeys/"+k.ID+"/revoke", e.admin, nil)
	wantStatus(t, "revoking the key", res, body, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/console/apikeys" {
		t.Errorf("revocation redirects to %q, want /console/apikeys", loc)
	}
	if _, err := keys.Authenticate(ctx, token); !errors.Is(err, apikey.ErrUnauthenticated) {
		t.Errorf("Authenticate(revoked key) = %v, want ErrUnauthenticated", err)
	}
	if got := e.auditActors("apikey.revoke"); !slices.Equal(got, []string{e.adminActor}) {
		t.Errorf("apikey.revoke events by %v, want one by %s", got, e.adminActor)
	}
	res, body = e.get("/console/apikeys", e.admin)
	if !strings.Contains(body, "revoked") || strings.Contains(body, "/console/apikeys/"+k.ID+"/revoke") {
		t.Errorf("the list does not show crm revoked (status %d):\n%s", res.StatusCode, excerpt(body))
	}
	res, body = e.post("/console/apikeys/"+k.ID+"/revoke", e.admin, nil)
	wantStatus(t, "revoking the key again", res, body, http.StatusNotFound)
	res, body = e.post("/console/apikeys/000000000000/revoke", e.admin, nil)
	wantStatus(t, "revoking no key", res, body, http.StatusNotFound)
	if strings.Contains(e.logs.String(), token[len(token)-20:]) {
		t.Errorf("the log holds the key")
	}
}

// TestAPIKeyCreateRefused checks that a bad request re-renders the form
// with the reason and makes no key.
func TestAPIKeyCreateRefused(t *testing.T) {
	e := newPagesEnv(t)
	if _, body := e.post("/console/apikeys", e.admin, url.Values{"name": {"taken"}, "scope": {"policies:read"}}); !apiKeyRE.MatchString(body) {
		t.Fatalf("making the key taken failed:\n%s", excerpt(body))
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
	}{
		{"no name", url.Values{"scope": {"policies:read"}}, http.StatusBadRequest},
		{"bad name", url.Values{"name": {"a b"}, "scope": {"policies:read"}}, http.StatusBadRequest},
		{"no scope", url.Values{"name": {"x"}}, http.StatusBadRequest},
		{"unknown scope", url.Values{"name": {"x"}, "scope": {"everything"}}, http.StatusBadRequest},
		{"bad lifetime", url.Values{"name": {"x"}, "scope": {"policies:read"}, "expires": {"soon"}}, http.StatusBadRequest},
		{"unknown policy", url.Values{"name": {"x"}, "scope": {"policies:read"}, "policy": {"nosuch"}}, http.StatusBadRequest},
		{"name taken", url.Values{"name": {"taken"}, "scope": {"policies:read"}}, http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.post("/console/apikeys", e.admin, tc.form)
			wantStatus(t, "POST /console/apikeys", res, body, tc.status)
			if !strings.Contains(body, `id="apikeys-error"`) || apiKeyRE.MatchString(body) {
				t.Errorf("the answer is not the form with the reason:\n%s", excerpt(body))
			}
		})
	}
	ks, err := apikey.NewService(e.db, nil).List(context.Background())
	if err != nil || len(ks) != 1 {
		t.Errorf("List() = %d keys, %v; want only the key taken", len(ks), err)
	}
}

// TestAPIKeysAndWebhooksForbidden checks that an officer and an auditor
// can neither see nor change API keys and webhooks.
func TestAPIKeysAndWebhooksForbidden(t *testing.T) {
	e := newPagesEnv(t)
	e.account("audrey@example.org", auth.Auditor)
	auditor := e.login("audrey@example.org")
	for who, session := range map[string]string{"officer": e.amy, "auditor": auditor} {
		for _, rq := range []struct {
			method, path string
			form         url.Values
		}{
			{http.MethodGet, "/console/apikeys", nil},
			{http.MethodPost, "/console/apikeys", url.Values{"name": {"sneaky"}, "scope": {"certificates:revoke"}}},
			{http.MethodGet, "/console/webhooks", nil},
			{http.MethodPost, "/console/webhooks", url.Values{"policy": {"staff"}, "url": {"https://evil.example/"}}},
		} {
			res, body := e.do(request{method: rq.method, path: rq.path, session: session, form: rq.form})
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s as %s = %d, want 403", rq.method, rq.path, who, res.StatusCode)
			}
			if apiKeyRE.MatchString(body) || strings.Contains(body, "mwh_") {
				t.Errorf("%s %s as %s shows a secret", rq.method, rq.path, who)
			}
		}
		if _, body := e.get("/console/", session); strings.Contains(body, `href="/console/apikeys"`) || strings.Contains(body, `href="/console/webhooks"`) {
			t.Errorf("the %s's navigation links to API keys or webhooks", who)
		}
	}
	if ks, _ := apikey.NewService(e.db, nil).List(context.Background()); len(ks) != 0 {
		t.Errorf("%d keys made by refused requests", len(ks))
	}
	if eps, _ := e.db.Webhooks(context.Background()); len(eps) != 0 {
		t.Errorf("%d webhooks added by refused requests", len(eps))
	}
	if _, body := e.get("/console/", e.admin); !strings.Contains(body, `href="/console/apikeys"`) || !strings.Contains(body, `href="/console/webhooks"`) {
		t.Errorf("the administrator's navigation lacks API keys or webhooks")
	}
}
