package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/enrol"
)

func (e *pagesEnv) state(id int64) enrol.State {
	e.t.Helper()
	en, err := e.enrol.Enrolment(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return en.State
}

// TestApproveReject approves one application and rejects another from the
// Authorization Panel; a rejection needs a reason.
func TestApproveReject(t *testing.T) {
	e := newPagesEnv(t)
	a := e.submitted("cli", "staff", "ann@example.org")
	b := e.submitted("cli", "staff", "bob@example.org")
	res, body := e.get("/console/applications", e.amy)
	wantStatus(t, "queue", res, body, http.StatusOK)
	if got := ids(body); len(got) != 2 || got[0] != a.ID || got[1] != b.ID {
		t.Fatalf("queue = %v, want %d then %d (oldest first)", got, a.ID, b.ID)
	}
	if !strings.Contains(body, "0 of 1") {
		t.Errorf("queue does not show the approvals needed")
	}

	path := "/console/enrolments/" + strconv.FormatInt(a.ID, 10)
	res, body = e.get(path, e.amy)
	for _, want := range []string{`id="approvals">0 of 1`, "enrolment.submit", "Liddell", `id="approve"`} {
		if !strings.Contains(body, want) {
			t.Errorf("application page lacks %q", want)
		}
	}
	res, body = e.post(path+"/approve", e.amy, nil)
	wantStatus(t, "approve", res, body, http.StatusSeeOther)
	if s := e.state(a.ID); s != enrol.Approved {
		t.Errorf("after approval the state is %s", s)
	}

	path = "/console/enrolments/" + strconv.FormatInt(b.ID, 10)
	res, body = e.post(path+"/reject", e.amy, url.Values{"reason": {"  "}})
	wantStatus(t, "reject without reason", res, body, http.StatusBadRequest)
	if !strings.Contains(body, `<span class="field-error">Error: give the reason`) {
		t.Errorf("no error next to the reason:\n%s", body)
	}
	res, body = e.post(path+"/reject", e.amy, url.Values{"reason": {"not staff"}})
	wantStatus(t, "reject", res, body, http.StatusSeeOther)
	if s := e.state(b.ID); s != enrol.Rejected {
		t.Errorf("after rejection the state is %s", s)
	}
	_, body = e.get("/console/applications", e.amy)
	if got := ids(body); len(got) != 0 {
		t.Errorf("queue after deciding = %v", got)
	}
}

// TestOfficerPolicies: an officer limited to "staff" neither sees nor
// decides an application under "students".
func TestOfficerPolicies(t *testing.T) {
	e := newPagesEnv(t)
	staff := e.submitted("cli", "staff", "ann@example.org")
	stu := e.submitted("cli", "students", "sam@example.org")
	_, body := e.get("/console/applications", e.olga)
	if got := ids(body); len(got) != 1 || got[0] != staff.ID {
		t.Errorf("officer's queue = %v, want only %d", got, staff.ID)
	}
	_, body = e.get("/console/applications?policy=students", e.olga)
	if got := ids(body); len(got) != 0 {
		t.Errorf("officer's queue of students = %v", got)
	}
	path := "/console/enrolments/" + strconv.FormatInt(stu.ID, 10)
	for _, r := range []request{
		{method: "GET", path: path},
		{method: "POST", path: path + "/approve", form: url.Values{}},
		{method: "POST", path: path + "/reject", form: url.Values{"reason": {"no"}}},
		{method: "POST", path: path + "/cancel", form: url.Values{}},
	} {
		r.session = e.olga
		res, body := e.do(r)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404\n%s", r.method, r.path, res.StatusCode, body)
		}
	}
	res, body := e.post("/console/applications/approve", e.olga, url.Values{"id": {strconv.FormatInt(stu.ID, 10)}})
	wantStatus(t, "bulk", res, body, http.StatusOK)
	if !strings.Contains(body, "not approved: there is no such enrolment") {
		t.Errorf("bulk approval of another policy's application:\n%s", body)
	}
	if s := e.state(stu.ID); s != enrol.Submitted {
		t.Errorf("the students application is %s", s)
	}
}

// TestSeparationOfDuties: who invited may not approve under a policy that
// separates duties; the page says why. A bulk approval approves each one
// on its own and reports the one refused.
func TestSeparationOfDuties(t *testing.T) {
	e := newPagesEnv(t)
	p := enrol.DefaultPolicy()
	p.Name = "dual"
	p.Approval.SeparateDuties, p.Approval.Required = true, 2
	if _, err := e.enrol.SavePolicy(context.Background(), "cli", p); err != nil {
		t.Fatal(err)
	}
	mine := e.submitted(e.adminActor, "dual", "ann@example.org")
	other := e.submitted("cli", "dual", "bob@example.org")
	plain := e.submitted("cli", "staff", "cid@example.org")

	path := "/console/enrolments/" + strconv.FormatInt(mine.ID, 10)
	res, body := e.post(path+"/approve", e.admin, nil)
	wantStatus(t, "approve own invitation", res, body, http.StatusForbidden)
	if !strings.Contains(body, "separation of duties") {
		t.Errorf("the page does not say why:\n%s", body)
	}

	form := url.Values{"id": {strconv.FormatInt(mine.ID, 10), strconv.FormatInt(other.ID, 10), strconv.FormatInt(plain.ID, 10)}}
	res, body = e.post("/console/applications/approve", e.admin, form)
	wantStatus(t, "bulk", res, body, http.StatusOK)
	for _, want := range []string{
		`id="bulk-summary">2 approved, 1 not approved.`,
		"not approved: the policy requires separation of duties",
		"approval recorded; more approvers must approve",
		"approved: the activation link went out",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("bulk result lacks %q:\n%s", want, body)
		}
	}
	if s := e.state(other.ID); s != enrol.Submitted {
		t.Errorf("one approval of two: state %s", s)
	}
	if s := e.state(plain.ID); s != enrol.Approved {
		t.Errorf("staff application: state %s", s)
	}
	res, body = e.get("/console/enrolments/"+strconv.FormatInt(other.ID, 10), e.admin)
	if !strings.Contains(body, `id="approvals">1 of 2: console:admin@example.org`) {
		t.Errorf("N of M progress not shown:\n%s", body)
	}
}
