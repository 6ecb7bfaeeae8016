package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
)

// TestInvitationUpload uploads a file with good and bad lines: the upload
// answers at once with the batch page, the good lines are invited, and
// the page and report.csv list every line, the bad ones with why, with a
// formula neutralised in the CSV.
func TestInvitationUpload(t *testing.T) {
	e := newPagesEnv(t)
	file := "email,given name,surname\r\n" +
		"ann@example.org,Ann,Smith\r\n" +
		"not-an-address,Bad,Row\r\n" +
		"bob@example.org,Bob,Jones\r\n" +
		"=SUM(A1:A9),Eve,Formula\r\n"
	res, body := e.upload(e.admin, "staff", "people.csv", file)
	wantStatus(t, "upload", res, body, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	id, err := strconv.ParseInt(strings.TrimPrefix(loc, "/console/batches/"), 10, 64)
	if err != nil {
		t.Fatalf("upload redirects to %q, want /console/batches/{id}", loc)
	}
	b := e.waitBatch(id)
	if b.State != "done" || b.Rows != 4 || b.Invited != 2 || b.Refused != 2 {
		t.Fatalf("batch = %+v, want done with 4 rows, 2 invited, 2 refused", b)
	}
	es, err := e.enrol.Enrolments(context.Background(), enrol.Filter{BatchID: id})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range es {
		got = append(got, en.Mailbox)
	}
	if strings.Join(got, " ") != "bob@example.org ann@example.org" {
		t.Errorf("invited %v, want bob@ and ann@", got)
	}

	res, body = e.get(loc, e.admin)
	wantStatus(t, "batch page", res, body, http.StatusOK)
	for _, want := range []string{`id="batch-state" data-state="done">done<`, "not-an-address", "invalid", `id="batch-invited">2<`} {
		if !strings.Contains(body, want) {
			t.Errorf("batch page lacks %q", want)
		}
	}
	_, body = e.get("/console/invitations?batch="+strconv.FormatInt(id, 10), e.admin)
	if got := ids(body); len(got) != 2 {
		t.Errorf("the batch's enrolments = %v, want 2", got)
	}
	res, body = e.get(loc+"?refused=1", e.admin)
	if strings.Contains(body, "ann@example.org") || !strings.Contains(body, "not-an-address") {
		t.Errorf("refused lines only: want not-an-address and not ann@:\n%s", body)
	}

	res, body = e.get(loc+"/report.csv", e.admin)
	wantStatus(t, "report.csv", res, body, http.StatusOK)
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatalf("report.csv does not parse: %v\n%s", err, body)
	}
	if len(recs) != 5 {
		t.Fatalf("report.csv has %d records, want a header and 4 lines:\n%s", len(recs), body)
	}
	if recs[2][1] != "not-an-address" || recs[2][2] != "refused" || recs[1][2] != "invited" {
		t.Errorf("report lines 1 and 2 = %v, %v", recs[1], recs[2])
	}
	if !strings.HasPrefix(recs[4][1], "'=") {
		t.Errorf("formula cell = %q, want it neutralised with a leading apostrophe", recs[4][1])
	}
}

// TestInvitationUploadRefused shows the form again, with the reason, for
// a file that is not an invitation list and for an officer's other policy;
// no batch is made.
func TestInvitationUploadRefused(t *testing.T) {
	e := newPagesEnv(t)
	res, body := e.upload(e.admin, "staff", "x.csv", "name,phone\r\nAnn,123\r\n")
	wantStatus(t, "no email column", res, body, http.StatusBadRequest)
	if !strings.Contains(body, "The file was not imported") || !strings.Contains(body, "email") {
		t.Errorf("the form does not say why:\n%s", body)
	}
	res, body = e.upload(e.olga, "students", "x.csv", "email\r\nann@example.org\r\n")
	wantStatus(t, "officer's other policy", res, body, http.StatusBadRequest)
	if bs, _ := e.db.RecentBatches(context.Background(), 1); len(bs) != 0 {
		t.Errorf("a refused upload made batch %d", bs[0].ID)
	}
}

// TestInvitationTemplateCSV offers the columns of a policy with a custom field.
func TestInvitationTemplateCSV(t *testing.T) {
	e := newPagesEnv(t)
	p := enrol.DefaultPolicy()
	p.Name = "lab"
	p.Fields = append(p.Fields, enrol.Field{Name: "staff_id", Label: "Staff ID", Required: true})
	if _, err := e.enrol.SavePolicy(context.Background(), "cli", p); err != nil {
		t.Fatal(err)
	}
	res, body := e.get("/console/invitations/template.csv?policy=lab", e.admin)
	wantStatus(t, "template.csv", res, body, http.StatusOK)
	if strings.TrimSpace(body) != "email,given name,surname,staff_id" {
		t.Errorf("template.csv = %q", body)
	}
}

// TestInvitationListKeyset pages through the invitations: page 2 starts
// right after page 1's last row, newest first, and in a mailbox search in
// the order of the mailbox; an officer sees only their policies.
func TestInvitationListKeyset(t *testing.T) {
	e := newPagesEnv(t)
	ctx := context.Background()
	for i := range 60 {
		if _, err := e.enrol.Invite(ctx, "cli", "staff", enrol.Invitee{Email: fmt.Sprintf("p%03d@example.org", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.enrol.Invite(ctx, "cli", "students", enrol.Invitee{Email: "stu@example.org"}); err != nil {
		t.Fatal(err)
	}
	res, body := e.get("/console/invitations", e.admin)
	wantStatus(t, "page 1", res, body, http.StatusOK)
	p1 := ids(body)
	if len(p1) != 50 || p1[0] != 61 {
		t.Fatalf("page 1 ids = %v, want 50 from 61 down", p1)
	}
	next := nextLink(body)
	if next != "/console/invitations?before="+strconv.FormatInt(p1[49], 10) {
		t.Fatalf("next link = %q", next)
	}
	_, body = e.get(next, e.admin)
	p2 := ids(body)
	if len(p2) != 11 || p2[0] != p1[49]-1 || nextLink(body) != "" {
		t.Fatalf("page 2 ids = %v (next %q), want 11 starting at %d and no next page", p2, nextLink(body), p1[49]-1)
	}

	// A search is in the order of the mailbox, and its next page starts
	// after the cursor's row.
	_, body = e.get("/console/invitations?q=p0", e.admin)
	s1 := ids(body)
	if len(s1) != 50 || s1[0] != 1 || s1[49] != 50 {
		t.Fatalf("q=p0 page 1 = %v, want ids 1 to 50 (p000 to p049)", s1)
	}
	next = nextLink(body)
	if next != "/console/invitations?after=50&q=p0" {
		t.Fatalf("q=p0 next link = %q", next)
	}
	_, body = e.get(next, e.admin)
	if s2 := ids(body); len(s2) != 10 || s2[0] != 51 {
		t.Errorf("q=p0 page 2 = %v, want ids 51 to 60", s2)
	}
	_, body = e.get("/console/invitations?q=p05", e.admin)
	if got := ids(body); len(got) != 10 || got[0] != 51 {
		t.Errorf("q=p05 = %v, want the ten p05x", got)
	}

	// The officer limited to staff does not see the students invitation.
	_, body = e.get("/console/invitations?q=stu%40", e.olga)
	if len(ids(body)) != 0 {
		t.Errorf("officer of staff sees %v under students", ids(body))
	}
	_, body = e.get("/console/invitations?q=stu%40", e.admin)
	if len(ids(body)) != 1 {
		t.Errorf("administrator sees %v, want the students invitation", ids(body))
	}
}

// TestInviteOne invites through the form; a bad address shows the form
// again with the reason next to the field.
func TestInviteOne(t *testing.T) {
	e := newPagesEnv(t)
	res, body := e.post("/console/invitations", e.admin, url.Values{"policy": {"staff"}, "email": {"not an address"}, "given_name": {"Ann"}})
	wantStatus(t, "bad address", res, body, http.StatusBadRequest)
	if !regexp.MustCompile(`<label for="email">[^<]*</label><span class="field-error">Error: invalid mailbox`).MatchString(body) {
		t.Errorf("no error next to the email field:\n%s", body)
	}
	res, body = e.post("/console/invitations", e.admin, url.Values{"policy": {"staff"}, "email": {"ann@example.org"}, "name": {"Ann Smith"}})
	wantStatus(t, "good address", res, body, http.StatusSeeOther)
	loc := res.Header.Get("Location")
	res, body = e.get(loc, e.admin)
	wantStatus(t, "enrolment page", res, body, http.StatusOK)
	for _, want := range []string{"ann@example.org", `id="enrolment-state">invited<`, "Smith", "enrolment.invite", e.adminActor} {
		if !strings.Contains(body, want) {
			t.Errorf("enrolment page lacks %q", want)
		}
	}
	// Resend and cancel.
	res, body = e.post(loc+"/resend", e.admin, nil)
	wantStatus(t, "resend", res, body, http.StatusSeeOther)
	res, body = e.post(loc+"/cancel", e.admin, url.Values{"reason": {"left"}})
	wantStatus(t, "cancel", res, body, http.StatusSeeOther)
	_, body = e.get(loc, e.admin)
	if !strings.Contains(body, `id="enrolment-state">cancelled<`) || !strings.Contains(body, "enrolment.resend") {
		t.Errorf("after resend and cancel the page shows:\n%s", body)
	}
}

// TestBatchImporting: while a batch is imported its page loads batch.js,
// which reloads it, and offers a refresh link for browsers without
// JavaScript; an officer of another policy does not see it.
func TestBatchImporting(t *testing.T) {
	e := newPagesEnv(t)
	b := &enrol.Batch{Policy: "students", Filename: "s.csv", Actor: "cli", State: "importing", CreatedAt: e.clock.Now()}
	if err := e.db.InTx(context.Background(), func(tx enrol.Tx) error { return tx.InsertBatch(b) }); err != nil {
		t.Fatal(err)
	}
	path := "/console/batches/" + strconv.FormatInt(b.ID, 10)
	res, body := e.get(path, e.admin)
	wantStatus(t, "batch page", res, body, http.StatusOK)
	for _, want := range []string{`data-state="importing"`, `<script src="/console/static/batch.js" defer></script>`, `id="batch-refresh"`} {
		if !strings.Contains(body, want) {
			t.Errorf("importing batch page lacks %q", want)
		}
	}
	res, body = e.get("/console/static/batch.js", e.admin)
	wantStatus(t, "batch.js", res, body, http.StatusOK)
	if !strings.Contains(body, "batch-state") {
		t.Errorf("batch.js = %q", body)
	}
	res, _ = e.get(path, e.olga)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("officer of staff opens a students batch: %d", res.StatusCode)
	}

	// An import whose process died commits nothing more: after
	// enrol.BatchStall the page says it stopped, and stops reloading.
	e.clock.Add(enrol.BatchStall + time.Second)
	res, body = e.get(path, e.admin)
	wantStatus(t, "stalled batch page", res, body, http.StatusOK)
	if !strings.Contains(body, `data-state="stopped"`) || !strings.Contains(body, `id="batch-stopped"`) || strings.Contains(body, "batch.js") {
		t.Errorf("a stalled batch's page does not say it stopped:\n%s", body)
	}
	// The stalled-batches job marks it failed, for the API and the CLI
	// too, and the page says why.
	if n, err := e.enrol.FailStalledBatches(context.Background()); err != nil || n != 1 {
		t.Fatalf("FailStalledBatches = %d, %v; want 1", n, err)
	}
	_, body = e.get(path, e.admin)
	if !strings.Contains(body, `data-state="failed"`) || !strings.Contains(body, "the process stopped; upload the file again") {
		t.Errorf("a failed stalled batch's page:\n%s", body)
	}
}
