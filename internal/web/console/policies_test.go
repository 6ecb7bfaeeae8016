package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/store"
)

// TestPolicyEdit saves an edited policy as a new version, shows each
// validation problem next to its line and saves nothing then, refuses an
// unknown setting, clones, and lists the versions.
func TestPolicyEdit(t *testing.T) {
	e := newPagesEnv(t)
	ctx := context.Background()
	res, body := e.get("/console/policies/staff", e.admin)
	wantStatus(t, "edit page", res, body, http.StatusOK)
	m := regexp.MustCompile(`(?s)<textarea id="policy" name="policy"[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no editor:\n%s", body)
	}
	doc := strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(m[1])
	if !strings.Contains(doc, "mode: manual") {
		t.Fatalf("editor holds:\n%s", doc)
	}

	bad := strings.Replace(doc, "mode: manual", "mode: sometimes", 1)
	bad = strings.Replace(bad, "validity_days: 365", "validity_days: 9000", 1)
	res, body = e.post("/console/policies/staff", e.admin, url.Values{"policy": {bad}, "base": {"1"}})
	wantStatus(t, "invalid policy", res, body, http.StatusBadRequest)
	for field, text := range map[string]string{"approval.mode": "mode: sometimes", "validity_days": "validity_days: 9000"} {
		re := regexp.MustCompile(`<li id="line-\d+" class="has-problem"><code>\s*` + regexp.QuoteMeta(text) + `</code><span class="field-error line-error" data-field="` + regexp.QuoteMeta(field) + `">`)
		if !re.MatchString(body) {
			t.Errorf("the problem with %s is not next to the line %q:\n%s", field, text, body)
		}
	}
	if p, _ := e.enrol.Policy(ctx, "staff"); p.Version != 1 {
		t.Errorf("an invalid policy was saved: version %d", p.Version)
	}

	res, body = e.post("/console/policies/staff", e.admin, url.Values{"policy": {doc + "colour: blue\n"}, "base": {"1"}})
	wantStatus(t, "unknown setting", res, body, http.StatusBadRequest)
	if !strings.Contains(body, "colour") || !strings.Contains(body, `class="has-problem"`) {
		t.Errorf("the unknown setting is not shown:\n%s", body)
	}

	good := strings.Replace(doc, "validity_days: 365", "validity_days: 200", 1)
	if !strings.Contains(body, `<input type="hidden" name="base" value="1">`) {
		t.Errorf("the editor does not post the version it edits:\n%s", body)
	}
	res, body = e.post("/console/policies/staff", e.admin, url.Values{"policy": {good}, "base": {"1"}})
	wantStatus(t, "save", res, body, http.StatusSeeOther)
	if p, _ := e.enrol.Policy(ctx, "staff"); p.Version != 2 || p.ValidityDays != 200 {
		t.Errorf("saved policy: version %d, validity %d", p.Version, p.ValidityDays)
	}
	// A second editor who opened version 1 does not overwrite version 2.
	stale := strings.Replace(doc, "validity_days: 365", "validity_days: 100", 1)
	res, body = e.post("/console/policies/staff", e.admin, url.Values{"policy": {stale}, "base": {"1"}})
	wantStatus(t, "save over a newer version", res, body, http.StatusConflict)
	if !strings.Contains(body, "changed meanwhile") || !strings.Contains(body, "validity_days: 100") {
		t.Errorf("the refused edit does not say why, or lost the typed document:\n%s", body)
	}
	if p, _ := e.enrol.Policy(ctx, "staff"); p.Version != 2 || p.ValidityDays != 200 {
		t.Errorf("after the stale edit: version %d, validity %d; want version 2 unchanged", p.Version, p.ValidityDays)
	}

	// Version 1 came from the fixture; the console's save is the newest.
	evs, err := e.db.AuditFilter(ctx, store.AuditQuery{Action: "policy.save", Object: "policy:staff"})
	if err != nil || len(evs) == 0 {
		t.Fatalf("audit events of the save = %+v, %v", evs, err)
	}
	if last := evs[0]; last.Actor != e.adminActor || !strings.HasPrefix(last.Detail, "version 2, from ") {
		t.Errorf("newest policy.save event = %+v, want version 2 by %s", last, e.adminActor)
	}

	res, body = e.post("/console/policies/staff/clone", e.admin, url.Values{"new_name": {"Bad Name"}})
	wantStatus(t, "clone with a bad name", res, body, http.StatusBadRequest)
	if !strings.Contains(body, `<span class="field-error">Error: must be 1 to 63`) {
		t.Errorf("no error next to the new name:\n%s", body)
	}
	res, body = e.post("/console/policies/staff/clone", e.admin, url.Values{"new_name": {"staff-2"}})
	wantStatus(t, "clone", res, body, http.StatusSeeOther)
	if p, err := e.enrol.Policy(ctx, "staff-2"); err != nil || p.ValidityDays != 200 {
		t.Errorf("clone: %v, %+v", err, p)
	}

	res, body = e.get("/console/policies/staff/history?version=1", e.admin)
	wantStatus(t, "history", res, body, http.StatusOK)
	if !strings.Contains(body, "version 2</a> (current)") || !strings.Contains(body, "validity_days: 365") {
		t.Errorf("history does not show version 1 and list version 2:\n%s", body)
	}

	// Officers do not edit policies.
	res, _ = e.post("/console/policies/staff", e.amy, url.Values{"policy": {good}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("officer saving a policy: %d", res.StatusCode)
	}
}

// TestPolicyNew creates a policy and refuses a second under the same name.
func TestPolicyNew(t *testing.T) {
	e := newPagesEnv(t)
	res, body := e.get("/console/policies/new", e.admin)
	wantStatus(t, "new", res, body, http.StatusOK)
	m := regexp.MustCompile(`(?s)<textarea id="policy" name="policy"[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
	doc := strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&amp;", "&").Replace(m[1])
	res, body = e.post("/console/policies", e.admin, url.Values{"policy": {strings.Replace(doc, `name: ""`, "name: lab", 1)}})
	wantStatus(t, "create", res, body, http.StatusSeeOther)
	res, body = e.post("/console/policies", e.admin, url.Values{"policy": {strings.Replace(doc, `name: ""`, "name: staff", 1)}})
	wantStatus(t, "create an existing name", res, body, http.StatusBadRequest)
	if !strings.Contains(body, "exists; edit it instead") {
		t.Errorf("no reason given:\n%s", body)
	}
}
