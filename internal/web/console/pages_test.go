package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/web/console"
)

var _ console.Store = (*sqlite.DB)(nil)

// TestPagesRender opens every page of invitations, applications,
// certificates, policies and templates: each view exists and renders,
// and only what the role may do is offered.
func TestPagesRender(t *testing.T) {
	e := newPagesEnv(t)
	e.withSet()
	e.account("aud@example.org", auth.Auditor)
	aud := e.login("aud@example.org")
	e.submitted("cli", "staff", "ann@example.org")
	for _, tt := range []struct {
		path, session string
		status        int
		want, not     string
	}{
		{"/console/invitations", e.admin, 200, `id="invite-upload"`, ""},
		{"/console/invitations", aud, 200, "ann@example.org", `id="invite-upload"`},
		{"/console/invitations/new", e.admin, 200, `name="email"`, ""},
		{"/console/invitations/new", aud, 403, "", ""},
		{"/console/invitations/upload", e.olga, 200, `<option>staff</option>`, "students"},
		{"/console/applications", aud, 200, "ann@example.org", `id="bulk-approve"`},
		{"/console/applications", e.amy, 200, `id="bulk-approve"`, ""},
		{"/console/enrolments/1", aud, 200, "ann@example.org", `id="approve"`},
		{"/console/enrolments/1", e.amy, 200, `id="approve"`, ""},
		{"/console/enrolments/999", e.admin, 404, "", ""},
		{"/console/certificates", aud, 200, "No certificate matches", ""},
		{"/console/certificates/abcdef12", e.admin, 404, "", ""},
		{"/console/batches/7", e.admin, 404, "", ""},
		{"/console/policies", e.admin, 200, `href="/console/policies/students"`, ""},
		{"/console/policies", aud, 403, "", ""},
		{"/console/policies/new", e.admin, 200, `id="policy-form"`, ""},
		{"/console/policies/nonesuch", e.admin, 404, "", ""},
		{"/console/policies/staff/history", e.admin, 200, `id="policy-version"`, ""},
		{"/console/templates", e.admin, 200, "staff-look", ""},
		{"/console/templates", e.amy, 403, "", ""},
		{"/console/templates/staff/invitation", e.admin, 200, `id="preview-frame"`, ""},
		{"/console/templates/staff/form", e.admin, 200, `id="preview-frame"`, ""},
		{"/console/templates/staff/nonesuch", e.admin, 404, "", ""},
	} {
		res, body := e.get(tt.path, tt.session)
		if res.StatusCode != tt.status {
			t.Errorf("GET %s: status %d, want %d", tt.path, res.StatusCode, tt.status)
			continue
		}
		if tt.want != "" && !strings.Contains(body, tt.want) {
			t.Errorf("GET %s lacks %q", tt.path, tt.want)
		}
		if tt.not != "" && strings.Contains(body, tt.not) {
			t.Errorf("GET %s shows %q", tt.path, tt.not)
		}
		if ct := res.Header.Get("Content-Type"); tt.status == http.StatusOK && !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q", tt.path, ct)
		}
	}
}
