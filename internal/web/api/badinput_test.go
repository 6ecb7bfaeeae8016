package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/web/api"
)

// TestBadInput sends broken requests: each gets a clear problem, and none
// changes anything.
func TestBadInput(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.MaxBatchBytes = 4096 })
	k := e.key("writer", all)
	big := `{"policy":"test","email":"a@example.com","given_name":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, target, ctype, body string
		status                            int
		kind                              string
		pointer                           string // of the first errors[] member; "" for none
	}{
		{"malformed JSON", "POST", "/api/v1/invitations", "application/json", `{"policy":`, 400, api.KindMalformed, ""},
		{"not JSON", "POST", "/api/v1/invitations", "application/json", `policy=test`, 400, api.KindMalformed, ""},
		{"wrong type", "POST", "/api/v1/invitations", "application/json", `{"policy":"test","email":5}`, 400, api.KindMalformed, "/email"},
		{"wrong nested type", "POST", "/api/v1/invitations", "application/json", `{"policy":"test","email":"a@example.com","fields":{"department":1}}`, 400, api.KindMalformed, "/fields"},
		{"unknown member", "POST", "/api/v1/invitations", "application/json", `{"policy":"test","email":"a@example.com","admin":true}`, 400, api.KindMalformed, "/admin"},
		{"two values", "POST", "/api/v1/invitations", "application/json", `{"policy":"test","email":"a@example.com"}{}`, 400, api.KindMalformed, ""},
		{"empty body", "POST", "/api/v1/invitations", "application/json", ``, 400, api.KindMalformed, ""},
		{"array for object", "POST", "/api/v1/invitations", "application/json", `[]`, 400, api.KindMalformed, ""},
		{"form body", "POST", "/api/v1/invitations", "application/x-www-form-urlencoded", `policy=test`, 415, api.KindMediaType, ""},
		{"oversized", "POST", "/api/v1/invitations", "application/json", big, 413, api.KindTooLarge, ""},
		{"no policy", "POST", "/api/v1/invitations", "application/json", `{"email":"a@example.com"}`, 422, api.KindInvalid, "/policy"},
		{"bad mailbox", "POST", "/api/v1/invitations", "application/json", `{"policy":"test","email":"not-an-address"}`, 422, api.KindInvalid, "/email"},
		{"unknown policy", "POST", "/api/v1/invitations", "application/json", `{"policy":"nope","email":"a@example.com"}`, 404, api.KindNotFound, ""},
		{"unknown query parameter", "GET", "/api/v1/enrolments?stat=invited", "", "", 400, api.KindInvalid, "?stat"},
		{"bad limit", "GET", "/api/v1/enrolments?limit=0", "", "", 400, api.KindInvalid, "?limit"},
		{"bad state", "GET", "/api/v1/enrolments?state=happy", "", "", 400, api.KindInvalid, "?state"},
		{"bad cursor", "GET", "/api/v1/events?after=-1", "", "", 400, api.KindInvalid, "?after"},
		{"bad ID", "GET", "/api/v1/enrolments/abc", "", "", 404, api.KindNotFound, ""},
		{"unknown enrolment", "POST", "/api/v1/enrolments/999/approve", "", "", 404, api.KindNotFound, ""},
		{"body on approve", "POST", "/api/v1/enrolments/1/approve", "application/json", `{"x":1}`, 400, api.KindMalformed, ""},
		{"reject without reason", "POST", "/api/v1/enrolments/1/reject", "application/json", `{}`, 422, api.KindInvalid, ""},
		{"bad revocation reason", "POST", "/api/v1/certificates/1a/revoke", "application/json", `{"reason":"certificateHold"}`, 422, api.KindInvalid, "/reason"},
		{"batch without policy", "POST", "/api/v1/invitations/batch", "text/csv", "email\na@example.com\n", 400, api.KindInvalid, "?policy"},
		{"batch as form", "POST", "/api/v1/invitations/batch?policy=test", "multipart/form-data", "x", 415, api.KindMediaType, ""},
		{"batch not an array", "POST", "/api/v1/invitations/batch?policy=test", "application/json", `{"email":"a@example.com"}`, 400, api.KindMalformed, ""},
		{"batch wrong type late", "POST", "/api/v1/invitations/batch?policy=test", "application/json",
			`[{"email":"a@example.com"},{"email":"b@example.com"},{"email":["c@example.com"]}]`, 400, api.KindMalformed, "/2/email"},
		{"batch unknown member", "POST", "/api/v1/invitations/batch?policy=test", "application/json",
			`[{"email":"a@example.com"},{"email":"b@example.com","role":"admin"}]`, 400, api.KindMalformed, "/1/role"},
		{"batch unknown field", "POST", "/api/v1/invitations/batch?policy=test", "application/json",
			`[{"email":"a@example.com","fields":{"salary":"1"}}]`, 400, api.KindMalformed, "/0/fields/salary"},
		{"batch line break", "POST", "/api/v1/invitations/batch?policy=test", "application/json",
			`[{"email":"a@example.com","given_name":"A\nB"}]`, 400, api.KindMalformed, "/0/given_name"},
		{"batch cut short", "POST", "/api/v1/invitations/batch?policy=test", "application/json", `[{"email":"a@example.com"},`, 400, api.KindMalformed, ""},
		{"batch CSV without email column", "POST", "/api/v1/invitations/batch?policy=test", "text/csv", "name\nAnn\n", 400, api.KindMalformed, ""},
		{"batch CSV broken quoting", "POST", "/api/v1/invitations/batch?policy=test", "text/csv", "email,given name\na@example.com,Ann\n\"b@example.com,B\n", 400, api.KindMalformed, ""},
		{"batch too large", "POST", "/api/v1/invitations/batch?policy=test", "text/csv", "email\n" + strings.Repeat("z@example.com\n", 400), 413, api.KindTooLarge, ""},
	}
	e.enrolment("someone@example.com", "invited")
	before := e.countEnrolments()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.call(k, c.method, c.target, c.ctype, strings.NewReader(c.body))
			p := r.problem(t, c.name, c.status, c.kind)
			if p.Detail == "" {
				t.Errorf("problem without detail")
			}
			if c.pointer != "" && (len(p.Errors) == 0 || p.Errors[0].Pointer != c.pointer) {
				t.Errorf("errors %+v, want pointer %s", p.Errors, c.pointer)
			}
			for _, leak := range []string{"sqlite", "json:", "goroutine", ".go:"} {
				if strings.Contains(string(r.body), leak) {
					t.Errorf("problem leaks %q: %s", leak, r.body)
				}
			}
			if n := e.countEnrolments(); n != before {
				t.Errorf("enrolments %d after a refused request, want %d", n, before)
			}
		})
	}
}

// TestBatchReport checks the per-row report of a small batch, as JSON
// and as CSV.
func TestBatchReport(t *testing.T) {
	e := newEnv(t)
	k := e.key("writer", []apikey.Scope{apikey.InvitationsWrite})
	r := e.call(k, "POST", "/api/v1/invitations/batch?policy=test&filename=hr.json", "application/json", strings.NewReader(
		`[{"email":"a@example.com","given_name":"A","fields":{"department":"X"}},{"email":"not-an-address"},{"email":"a@example.com"},{"email":"b@example.com"}]`))
	var rep struct {
		Rows []struct {
			Line, Index *int
			Email       string
			Invited     bool
			Reason      string
			EnrolmentID int64 `json:"enrolment_id"`
		}
		Batch struct{ Rows, Invited, Refused int }
		Error *api.Problem
	}
	r.json(t, &rep)
	if r.status != 200 || len(rep.Rows) != 4 || rep.Batch.Invited != 2 || rep.Batch.Refused != 2 || rep.Error != nil {
		t.Fatalf("report %d %s", r.status, r.body)
	}
	for i, row := range rep.Rows {
		if row.Index == nil || *row.Index != i || *row.Line != i+2 {
			t.Errorf("row %d: index %v line %v", i, row.Index, row.Line)
		}
	}
	if !rep.Rows[0].Invited || rep.Rows[1].Invited || rep.Rows[1].Reason == "" || rep.Rows[2].Invited || !rep.Rows[3].Invited {
		t.Errorf("outcomes %+v", rep.Rows)
	}
	en, err := e.svc.Enrolment(t.Context(), rep.Rows[0].EnrolmentID)
	if err != nil || en.Fields["department"] != "X" || en.GivenName != "A" {
		t.Errorf("invited enrolment %+v, %v", en, err)
	}
	// The same people again: nobody is invited twice.
	rep.Rows = nil
	r = e.call(k, "POST", "/api/v1/invitations/batch?policy=test", "text/csv", strings.NewReader("email\r\na@example.com\r\nb@example.com\r\nc@example.com\r\n"))
	r.json(t, &rep)
	if rep.Batch.Invited != 1 || rep.Rows[0].Invited || rep.Rows[0].Index != nil || *rep.Rows[2].Line != 4 {
		t.Errorf("second batch %s", r.body)
	}
}

// rowsReader produces a CSV of n rows as it is read, so neither the test
// nor the server ever holds the whole body.
type rowsReader struct {
	n, i int
	buf  bytes.Buffer
}

func (r *rowsReader) Read(p []byte) (int, error) {
	for r.buf.Len() < len(p) && r.i <= r.n {
		switch {
		case r.i == 0:
			r.buf.WriteString("email,given name,surname\n")
		case r.i%1000 == 0:
			fmt.Fprintf(&r.buf, "broken-%d,Bad,Row\n", r.i) // refused: not a mailbox
		default:
			fmt.Fprintf(&r.buf, "person%d@example.com,Given%d,Surname\n", r.i, r.i)
		}
		r.i++
	}
	if r.buf.Len() == 0 {
		return 0, io.EOF
	}
	return r.buf.Read(p)
}

// TestHundredThousandRows invites a 100,000-row CSV body in one request.
func TestHundredThousandRows(t *testing.T) {
	e := newEnv(t)
	k := e.key("bulk", []apikey.Scope{apikey.InvitationsWrite})
	const n = 100000
	req := httptest.NewRequest("POST", "/api/v1/invitations/batch?policy=test&filename=all.csv", &rowsReader{n: n})
	req.Header.Set("Authorization", "Bearer "+k)
	req.Header.Set("Content-Type", "text/csv")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String()[:min(rec.Body.Len(), 2000)])
	}
	var rep struct {
		Rows []struct {
			Line    int
			Invited bool
			Reason  string
		}
		Batch struct {
			State                  string
			Rows, Invited, Refused int
		}
		Error *api.Problem
	}
	if err := json.NewDecoder(rec.Body).Decode(&rep); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	if len(rep.Rows) != n || rep.Batch.Rows != n || rep.Batch.Invited != n-n/1000 || rep.Batch.Refused != n/1000 || rep.Batch.State != "done" || rep.Error != nil {
		t.Fatalf("report: %d rows, batch %+v, error %v", len(rep.Rows), rep.Batch, rep.Error)
	}
	for i, row := range rep.Rows {
		if row.Line != i+2 || row.Invited != ((i+1)%1000 != 0) {
			t.Fatalf("row %d: %+v", i, row)
		}
	}
	if got := e.countEnrolments(); got != n-n/1000 {
		t.Fatalf("%d enrolments, want %d", got, n-n/1000)
	}
}
