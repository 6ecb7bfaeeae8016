package api_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/web/api"
)

// TestOpenAPIDocument loads the document with kin-openapi, validates it
// as OpenAPI 3.1, and checks that its operations are exactly the routes
// the handler serves.
func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t)
	if e.doc.OpenAPI != "3.1.0" || !e.doc.IsOpenAPI31OrLater() {
		t.Fatalf("document version %q, want 3.1.0", e.doc.OpenAPI)
	}
	if err := e.doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document does not validate: %v", err)
	}
	// The document served is the one validated.
	r := e.get("", "/api/v1/openapi.json")
	if r.status != 200 {
		t.Fatalf("GET openapi.json = %d", r.status)
	}
	served, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil || served.Paths.Len() != e.doc.Paths.Len() {
		t.Fatalf("served document: %v, %d paths, want %d", err, served.Paths.Len(), e.doc.Paths.Len())
	}

	var inDoc []string
	for path, item := range e.doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc = append(inDoc, method+" "+api.Prefix+path)
		}
	}
	routes := api.RoutePatterns()
	sort.Strings(inDoc)
	sort.Strings(routes)
	if !slices.Equal(inDoc, routes) {
		t.Fatalf("document operations and routes differ:\ndocument %v\nroutes   %v", inDoc, routes)
	}
	// And every operation reaches a handler: without a key, a route answers
	// 401 (or 200 for the document), never the 404 of an unknown route.
	for _, op := range inDoc {
		method, path, _ := strings.Cut(op, " ")
		path = strings.NewReplacer("{id}", "1", "{serial}", "1a", "{name}", "test").Replace(path)
		res := e.call("", method, path, "", nil)
		if res.status == 404 {
			t.Errorf("%s %s: 404, the route is not served", method, path)
		}
	}
	e.get("", "/api/v1/nothing-here").problem(t, "unknown route", 404, api.KindNotFound)
	e.call("", "DELETE", "/api/v1/invitations", "", nil).problem(t, "wrong method", 405, api.KindMethod)
}

// all is every scope.
var all = apikey.Scopes

func allBut(s apikey.Scope) []apikey.Scope {
	return slices.DeleteFunc(slices.Clone(all), func(x apikey.Scope) bool { return x == s })
}

// TestEveryEndpointAuth calls every operation with no key, a key without
// its scope, a revoked key, an expired key, and a key with only its scope.
func TestEveryEndpointAuth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	invited := e.enrolment("invited@example.com", enrol.Invited)
	toCancel := e.enrolment("cancel@example.com", enrol.Invited)
	toApprove := e.enrolment("approve@example.com", enrol.Submitted)
	toReject := e.enrolment("reject@example.com", enrol.Submitted)
	issued := e.enrolment("issued@example.com", enrol.Issued)
	id := func(en *enrol.Enrolment) string { return strconv.FormatInt(en.ID, 10) }

	revoked := e.key("revoked", all)
	if err := e.keys.Revoke(ctx, "test", "revoked"); err != nil {
		t.Fatal(err)
	}
	_, expiring, err := e.keys.Create(ctx, "test", apikey.CreateRequest{Name: "expiring", Scopes: all, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	type tc struct {
		method, path string // path: the document's template
		target       string
		ctype, body  string
		scope        apikey.Scope
		want         int
	}
	cases := []tc{
		{"POST", "/invitations", "/api/v1/invitations", "application/json", `{"policy":"test","email":"new@example.com","given_name":"New"}`, apikey.InvitationsWrite, 201},
		{"POST", "/invitations/batch", "/api/v1/invitations/batch?policy=test", "text/csv", "email,given name\nb1@example.com,B\n", apikey.InvitationsWrite, 200},
		{"GET", "/invitations", "/api/v1/invitations?policy=test", "", "", apikey.InvitationsRead, 200},
		{"GET", "/invitations/{id}", "/api/v1/invitations/" + id(invited), "", "", apikey.InvitationsRead, 200},
		{"POST", "/invitations/{id}/resend", "/api/v1/invitations/" + id(invited) + "/resend", "", "", apikey.InvitationsWrite, 200},
		{"POST", "/invitations/{id}/cancel", "/api/v1/invitations/" + id(toCancel) + "/cancel", "application/json", `{"reason":"left"}`, apikey.InvitationsWrite, 200},
		{"POST", "/referrals", "/api/v1/referrals", "application/json", `{"policy":"test","email":"ref@example.com"}`, apikey.ReferralsWrite, 201},
		{"GET", "/enrolments", "/api/v1/enrolments?state=submitted", "", "", apikey.EnrolmentsRead, 200},
		{"GET", "/enrolments/{id}", "/api/v1/enrolments/" + id(issued), "", "", apikey.EnrolmentsRead, 200},
		{"POST", "/enrolments/{id}/approve", "/api/v1/enrolments/" + id(toApprove) + "/approve", "", "", apikey.ApprovalsWrite, 200},
		{"POST", "/enrolments/{id}/reject", "/api/v1/enrolments/" + id(toReject) + "/reject", "application/json", `{"reason":"unknown person"}`, apikey.ApprovalsWrite, 200},
		{"GET", "/certificates", "/api/v1/certificates?mailbox=issued@example.com", "", "", apikey.CertificatesRead, 200},
		{"GET", "/certificates/{serial}", "/api/v1/certificates/" + issued.Serial, "", "", apikey.CertificatesRead, 200},
		{"GET", "/certificates/{serial}/pem", "/api/v1/certificates/" + issued.Serial + "/pem", "", "", apikey.CertificatesRead, 200},
		{"GET", "/certificates/{serial}/der", "/api/v1/certificates/" + issued.Serial + "/der", "", "", apikey.CertificatesRead, 200},
		{"GET", "/certificates/{serial}/chain", "/api/v1/certificates/" + issued.Serial + "/chain", "", "", apikey.CertificatesRead, 200},
		{"POST", "/certificates/{serial}/revoke", "/api/v1/certificates/" + issued.Serial + "/revoke", "application/json", `{"reason":"superseded"}`, apikey.CertificatesRevoke, 200},
		{"GET", "/policies", "/api/v1/policies", "", "", apikey.PoliciesRead, 200},
		{"GET", "/policies/{name}", "/api/v1/policies/test", "", "", apikey.PoliciesRead, 200},
		{"GET", "/events", "/api/v1/events?after=0&limit=5", "", "", apikey.EventsRead, 200},
	}
	// Every operation but the document itself is in the table.
	covered := map[string]bool{"GET /openapi.json": true}
	for _, c := range cases {
		covered[c.method+" "+c.path] = true
	}
	for _, p := range api.RoutePatterns() {
		if !covered[strings.Replace(p, api.Prefix, "", 1)] {
			t.Errorf("route %s has no case", p)
		}
	}

	before := e.countEnrolments()
	for i, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			body := func() *strings.Reader { return strings.NewReader(c.body) }
			e.call("", c.method, c.target, c.ctype, body()).problem(t, "no key", 401, api.KindUnauthorized)
			e.call("mca_0123456789ab_"+strings.Repeat("A", 43), c.method, c.target, c.ctype, body()).problem(t, "unknown key", 401, api.KindUnauthorized)
			wrong := e.key(fmt.Sprintf("wrong-%d", i), allBut(c.scope))
			e.call(wrong, c.method, c.target, c.ctype, body()).problem(t, "wrong scope", 403, api.KindScope)
			e.call(revoked, c.method, c.target, c.ctype, body()).problem(t, "revoked key", 401, api.KindUnauthorized)
			e.mu.Lock()
			e.offset = 2 * time.Hour
			e.mu.Unlock()
			e.call(expiring, c.method, c.target, c.ctype, body()).problem(t, "expired key", 401, api.KindUnauthorized)
			e.mu.Lock()
			e.offset = 0
			e.mu.Unlock()
			if n := e.countEnrolments(); n != before {
				t.Fatalf("a refused request changed the enrolments: %d, want %d", n, before)
			}
			right := e.key(fmt.Sprintf("right-%d", i), []apikey.Scope{c.scope})
			if r := e.call(right, c.method, c.target, c.ctype, body()); r.status != c.want {
				t.Fatalf("with scope %s: status %d, want %d\n%s", c.scope, r.status, c.want, r.body)
			}
			before = e.countEnrolments()
		})
	}

	// The state changes are in the audit log under the key's name.
	r := e.get(e.key("auditor", []apikey.Scope{apikey.EventsRead}), "/api/v1/events?limit=1000")
	var page struct {
		Items []struct{ Actor, Action string }
	}
	r.json(t, &page)
	seen := map[string]string{}
	for _, ev := range page.Items {
		if strings.HasPrefix(ev.Actor, "apikey:") {
			seen[ev.Action] = ev.Actor
		}
	}
	for _, action := range []string{"enrolment.invite", "enrolment.resend", "enrolment.cancel", "referral.create", "enrolment.approve", "enrolment.reject", "certificate.revoke", "batch.start"} {
		if !strings.HasPrefix(seen[action], "apikey:right-") {
			t.Errorf("no audit event %s by an API key (seen %v)", action, seen)
		}
	}
}

// TestPolicyLimits checks that a key limited to one policy neither sees
// nor changes the enrolments and certificates of another.
func TestPolicyLimits(t *testing.T) {
	e := newEnv(t)
	sub := e.enrolment("ann@example.com", enrol.Submitted)
	issued := e.enrolment("ben@example.com", enrol.Issued)
	other := e.key("other", all, "other")
	own := e.key("own", all, "test")

	e.get(other, "/api/v1/enrolments/"+strconv.FormatInt(sub.ID, 10)).problem(t, "get", 404, api.KindNotFound)
	e.post(other, "/api/v1/enrolments/"+strconv.FormatInt(sub.ID, 10)+"/approve", nil).problem(t, "approve", 404, api.KindNotFound)
	e.get(other, "/api/v1/certificates/"+issued.Serial).problem(t, "certificate", 404, api.KindNotFound)
	e.post(other, "/api/v1/certificates/"+issued.Serial+"/revoke", map[string]string{"reason": "keyCompromise"}).problem(t, "revoke", 404, api.KindNotFound)
	e.post(other, "/api/v1/invitations", map[string]string{"policy": "test", "email": "x@example.com"}).problem(t, "invite", 403, api.KindPolicy)
	e.get(other, "/api/v1/enrolments?policy=test").problem(t, "list", 403, api.KindPolicy)
	e.get(other, "/api/v1/events").problem(t, "events", 403, api.KindPolicy)
	e.get(other, "/api/v1/policies/test").problem(t, "policy", 404, api.KindNotFound)

	var page struct{ Items []struct{ Mailbox string } }
	e.get(other, "/api/v1/enrolments").json(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("key of policy other lists %d enrolments of test", len(page.Items))
	}
	e.get(other, "/api/v1/certificates").json(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("key of policy other lists %d certificates of test", len(page.Items))
	}
	e.get(own, "/api/v1/certificates").json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Mailbox != "ben@example.com" {
		t.Errorf("key of policy test lists %v", page.Items)
	}
	if st, _ := e.svc.Enrolment(context.Background(), sub.ID); st.State != enrol.Submitted {
		t.Errorf("enrolment is %s after refused requests", st.State)
	}
}

// TestWalk walks a complete enrolment: the administrator's side through
// the API, the user's through the enrolment pages.
func TestWalk(t *testing.T) {
	e := newEnv(t)
	admin := e.key("hr-system", []apikey.Scope{apikey.InvitationsWrite, apikey.InvitationsRead, apikey.EnrolmentsRead,
		apikey.ApprovalsWrite, apikey.CertificatesRead, apikey.CertificatesRevoke, apikey.PoliciesRead, apikey.EventsRead})

	var pol map[string]any
	e.get(admin, "/api/v1/policies/test").json(t, &pol)
	if keys := pol["referral_keys"].([]any); len(keys) != 1 || keys[0].(map[string]any)["secret"] != nil {
		t.Fatalf("policy shows referral keys %v", keys)
	}

	// 1. Invite.
	r := e.post(admin, "/api/v1/invitations", map[string]any{"policy": "test", "email": "Carol@Example.com", "given_name": "Carol", "surname": "Ng",
		"fields": map[string]string{"department": "R&D"}})
	var en struct {
		ID                     int64
		State, Mailbox, Serial string
		Fields                 map[string]string
	}
	r.json(t, &en)
	if r.status != 201 || en.State != "invited" || r.header.Get("Location") != "/api/v1/invitations/"+strconv.FormatInt(en.ID, 10) {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	path := "/api/v1/enrolments/" + strconv.FormatInt(en.ID, 10)

	// 2. The user fills in the form behind the emailed link.
	tok := e.token(en.Mailbox, "/e/")
	if code, body := e.form("/e/"+tok, url.Values{"f_given_name": {"Carol"}, "f_surname": {"Ng"}, "f_department": {"R&D"},
		"accept_terms": {"yes"}, "terms_version": {"1"}}); code != 200 {
		t.Fatalf("form: %d\n%s", code, body)
	}

	// 3. The system finds it waiting and approves it.
	var page struct {
		Items []struct{ ID int64 }
		Next  *int64
	}
	e.get(admin, "/api/v1/enrolments?state=submitted&policy=test").json(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != en.ID {
		t.Fatalf("submitted: %+v", page)
	}
	e.post(admin, path+"/approve", nil).json(t, &en)
	if en.State != "approved" {
		t.Fatalf("after approve: %s", en.State)
	}
	e.post(admin, path+"/approve", nil).problem(t, "second approval", 409, api.KindConflict)

	// 4. The user activates with a server-generated key.
	if code, body := e.form("/a/"+e.token(en.Mailbox, "/a/"), url.Values{"mode": {"server"}}); code != 200 || !strings.Contains(body, "p12-password") {
		t.Fatalf("activate: %d\n%s", code, body)
	}

	// 5. The system reads the result and its history.
	var full struct {
		State, Serial string
		History       []struct{ Action, Actor string }
	}
	e.get(admin, path).json(t, &full)
	var actions []string
	for _, h := range full.History {
		actions = append(actions, h.Action+" by "+h.Actor)
	}
	want := []string{"enrolment.invite by apikey:hr-system", "enrolment.submit by user:Carol@example.com",
		"enrolment.approve by apikey:hr-system", "certificate.issue by user:Carol@example.com"}
	if full.State != "issued" || !slices.Equal(actions, want) {
		t.Fatalf("enrolment %s with history\n%v\nwant\n%v", full.State, actions, want)
	}

	// 6. Certificates: search, JSON with PEM, DER, chain.
	var certs struct {
		Items []struct{ Serial, State, Policy string }
	}
	e.get(admin, "/api/v1/certificates?mailbox=Carol@EXAMPLE.com&state=valid").json(t, &certs)
	if len(certs.Items) != 1 || certs.Items[0].Serial != full.Serial || certs.Items[0].Policy != "test" {
		t.Fatalf("search: %+v", certs)
	}
	der := e.get(admin, "/api/v1/certificates/"+full.Serial+"/der")
	cert, err := x509.ParseCertificate(der.body)
	if err != nil || cert.EmailAddresses[0] != "Carol@example.com" || der.header.Get("Content-Type") != "application/pkix-cert" {
		t.Fatalf("DER: %v %v", err, der.header)
	}
	var one struct{ PEM string }
	e.get(admin, "/api/v1/certificates/"+full.Serial).json(t, &one)
	if b, _ := pem.Decode([]byte(one.PEM)); b == nil || string(b.Bytes) != string(der.body) {
		t.Fatalf("JSON PEM differs from DER")
	}
	chain := e.get(admin, "/api/v1/certificates/"+full.Serial+"/chain").body
	if n := strings.Count(string(chain), "BEGIN CERTIFICATE"); n < 2 {
		t.Fatalf("chain has %d certificates", n)
	}

	// 7. Revoke; the enrolment follows.
	var rv struct {
		Reason         string
		AlreadyRevoked bool `json:"already_revoked"`
	}
	e.post(admin, "/api/v1/certificates/"+full.Serial+"/revoke", map[string]string{"reason": "key-compromise"}).json(t, &rv)
	if rv.Reason != "keyCompromise" || rv.AlreadyRevoked {
		t.Fatalf("revoke: %+v", rv)
	}
	e.post(admin, "/api/v1/certificates/"+full.Serial+"/revoke", map[string]string{"reason": "keyCompromise"}).json(t, &rv)
	if !rv.AlreadyRevoked {
		t.Errorf("second revocation not reported as already revoked")
	}
	e.get(admin, path).json(t, &full)
	if full.State != "revoked" {
		t.Errorf("enrolment %s after revocation", full.State)
	}

	// 8. Events since a cursor.
	var evs struct {
		Items []struct {
			Seq    int64
			Action string
		}
		Next int64
	}
	e.get(admin, "/api/v1/events?after=0&limit=2").json(t, &evs)
	if len(evs.Items) != 2 || evs.Next != evs.Items[1].Seq {
		t.Fatalf("events page: %+v", evs)
	}
	cursor := evs.Next
	e.get(admin, "/api/v1/events?after="+strconv.FormatInt(cursor, 10)+"&limit=1000").json(t, &evs)
	if len(evs.Items) == 0 || evs.Items[0].Seq != cursor+1 || evs.Items[len(evs.Items)-1].Action != "certificate.revoke" {
		t.Fatalf("events after %d: %+v", cursor, evs)
	}
	e.get(admin, "/api/v1/events?after="+strconv.FormatInt(evs.Next, 10)).json(t, &evs)
	if len(evs.Items) != 0 {
		t.Fatalf("events after the last: %+v", evs)
	}
}

// TestKeysetPagination pages through enrolments.
func TestKeysetPagination(t *testing.T) {
	e := newEnv(t)
	for i := range 7 {
		e.enrolment(fmt.Sprintf("p%d@example.com", i), enrol.Invited)
	}
	k := e.key("reader", []apikey.Scope{apikey.InvitationsRead})
	var got []int64
	target := "/api/v1/invitations?limit=3"
	for range 5 {
		var page struct {
			Items []struct{ ID int64 }
			Next  *int64
		}
		e.get(k, target).json(t, &page)
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if page.Next == nil {
			break
		}
		target = "/api/v1/invitations?limit=3&before=" + strconv.FormatInt(*page.Next, 10)
	}
	if len(got) != 7 || !slices.IsSortedFunc(got, func(a, b int64) int { return int(b - a) }) {
		t.Fatalf("paged IDs %v, want 7 newest first", got)
	}
}

// TestReferral mints a referral link and follows it as the user.
func TestReferral(t *testing.T) {
	e := newEnv(t)
	k := e.key("portal", []apikey.Scope{apikey.ReferralsWrite})
	var ref struct{ URL string }
	r := e.post(k, "/api/v1/referrals", map[string]any{"policy": "test", "email": "dan@example.com", "given_name": "Dan", "surname": "Oh", "expires_in": 600})
	r.json(t, &ref)
	u, err := url.Parse(ref.URL)
	if r.status != 201 || err != nil || u.Host != "mailca.example" || u.Path != "/r" {
		t.Fatalf("referral: %d %s", r.status, r.body)
	}
	tok := u.Query().Get("t")
	if code, body := e.form("/r", url.Values{"t": {tok}, "f_given_name": {"Dan"}, "f_surname": {"Oh"}, "accept_terms": {"yes"}, "terms_version": {"1"}}); code != 200 {
		t.Fatalf("referral form: %d\n%s", code, body)
	}
	if code, _ := e.form("/r", url.Values{"t": {tok}, "accept_terms": {"yes"}, "terms_version": {"1"}}); code == 200 {
		t.Errorf("a referral link worked twice")
	}
	e.post(k, "/api/v1/referrals", map[string]any{"policy": "other", "email": "dan@example.com"}).problem(t, "no referral channel", 409, api.KindConflict)
	p := e.post(k, "/api/v1/referrals", map[string]any{"policy": "test", "email": "not a mailbox", "expires_in": 999999}).problem(t, "bad values", 422, api.KindInvalid)
	if len(p.Errors) != 2 {
		t.Errorf("problem errors %+v, want email and expires_in", p.Errors)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.Rate, c.Burst = 0.001, 3 })
	k := e.key("busy", []apikey.Scope{apikey.PoliciesRead})
	for i := range 3 {
		if r := e.get(k, "/api/v1/policies"); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.get(k, "/api/v1/policies")
	r.problem(t, "fourth request", 429, api.KindRateLimited)
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// The scheme is case-insensitive; a malformed header is not a key.
	for h, want := range map[string]int{"bearer " + k: 429, "Basic " + k: 401, "Bearer": 401, k: 401} {
		req := httptest.NewRequest("GET", "/api/v1/policies", nil)
		req.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %.12q...: status %d, want %d", h, rec.Code, want)
		}
	}
	// Another key has its own bucket.
	if r := e.get(e.key("calm", []apikey.Scope{apikey.PoliciesRead}), "/api/v1/policies"); r.status != 200 {
		t.Errorf("another key: %d", r.status)
	}
}

// TestCrossOrigin checks how the server's cross-origin protection treats
// the API: clients that send no Origin or Sec-Fetch-Site header (curl,
// server-side programs) pass; a browser posting from another site does
// not.
func TestCrossOrigin(t *testing.T) {
	e := newEnv(t)
	k := e.key("writer", []apikey.Scope{apikey.InvitationsWrite})
	body := `{"policy":"test","email":"x@example.com"}`
	for _, c := range []struct {
		name, header, value string
		want                int
	}{
		{"cross-site browser", "Sec-Fetch-Site", "cross-site", 403},
		{"foreign origin", "Origin", "https://evil.example", 403},
		{"API client", "", "", 201},
	} {
		req := httptest.NewRequest("POST", "/api/v1/invitations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+k)
		req.Header.Set("Content-Type", "application/json")
		if c.header != "" {
			req.Header.Set(c.header, c.value)
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: status %d, want %d\n%s", c.name, rec.Code, c.want, rec.Body)
		}
	}
}

// TestReadsAudited: every read through the API is an audit event with the
// key's identity, recorded whether or not the resource exists; the events
// endpoint leaves these out, so that polling it does not read back its own
// polls.
func TestReadsAudited(t *testing.T) {
	e := newEnv(t)
	k := e.key("hr-reader", []apikey.Scope{apikey.PoliciesRead, apikey.EventsRead})
	if r := e.get(k, "/api/v1/policies/test"); r.status != 200 {
		t.Fatalf("read policy: %d %s", r.status, r.body)
	}
	e.get(k, "/api/v1/policies/nonesuch").problem(t, "unknown policy", 404, api.KindNotFound)
	evs, err := e.db.AuditFilter(context.Background(), sqlite.AuditQuery{Action: api.ReadAction})
	if err != nil {
		t.Fatal(err)
	}
	var details []string
	for _, ev := range evs {
		if ev.Actor != "apikey:hr-reader" || ev.Object != "api:/policies/{name}" {
			t.Errorf("read event %+v, want actor apikey:hr-reader, object api:/policies/{name}", ev)
		}
		details = append(details, ev.Detail)
	}
	if want := []string{"GET /api/v1/policies/nonesuch, from 192.0.2.1", "GET /api/v1/policies/test, from 192.0.2.1"}; !slices.Equal(details, want) {
		t.Errorf("read events %q, want %q (newest first)", details, want)
	}
	var page struct {
		Items []struct{ Action string }
		Next  int64
	}
	e.get(k, "/api/v1/events").json(t, &page)
	for _, it := range page.Items {
		if it.Action == api.ReadAction {
			t.Errorf("the events endpoint lists a read: %+v", page.Items)
		}
	}
	// The cursor passes the reads too, this one included.
	if head, _ := e.db.AuditFilter(context.Background(), sqlite.AuditQuery{Limit: 1}); len(head) != 1 || page.Next != head[0].Seq {
		t.Errorf("events cursor %d, want the chain's head %+v", page.Next, head)
	}
}
