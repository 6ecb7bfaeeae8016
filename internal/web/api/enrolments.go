package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/enrol"
)

// enrolmentJSON is an enrolment as the API shows it.
type enrolmentJSON struct {
	ID            int64             `json:"id"`
	Policy        string            `json:"policy"`
	PolicyVersion int               `json:"policy_version"`
	State         string            `json:"state"`
	Channel       string            `json:"channel"`
	Mailbox       string            `json:"mailbox"`
	GivenName     string            `json:"given_name"`
	Surname       string            `json:"surname"`
	Fields        map[string]string `json:"fields"`
	BatchID       int64             `json:"batch_id,omitempty"`
	InvitedBy     string            `json:"invited_by,omitempty"`
	Serial        string            `json:"serial,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	Approvers     []string          `json:"approvers"`
	RenewalOf     string            `json:"renewal_of,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	SubmittedAt   *time.Time        `json:"submitted_at,omitempty"`
	DecidedAt     *time.Time        `json:"decided_at,omitempty"`
	IssuedAt      *time.Time        `json:"issued_at,omitempty"`
	ExpiresAt     *time.Time        `json:"expires_at,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toEnrolment(e *enrol.Enrolment) enrolmentJSON {
	out := enrolmentJSON{ID: e.ID, Policy: e.Policy, PolicyVersion: e.PolicyVersion, State: string(e.State), Channel: string(e.Channel),
		Mailbox: e.Mailbox, GivenName: e.GivenName, Surname: e.Surname, Fields: e.Fields, BatchID: e.BatchID, InvitedBy: e.InvitedBy,
		Serial: e.Serial, Reason: e.Reason, Approvers: e.Approvers, RenewalOf: e.RenewalOf,
		CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC(), SubmittedAt: optTime(e.SubmittedAt), DecidedAt: optTime(e.DecidedAt),
		IssuedAt: optTime(e.IssuedAt), ExpiresAt: optTime(e.ExpiresAt)}
	if out.Fields == nil {
		out.Fields = map[string]string{}
	}
	if out.Approvers == nil {
		out.Approvers = []string{}
	}
	return out
}

type pageJSON[T any] struct {
	Items []T    `json:"items"`
	Next  *int64 `json:"next"` // cursor of the next page; null on the last
}

// pathID parses the {id} path value.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, problem(http.StatusNotFound, KindNotFound, "no enrolment %q", r.PathValue("id"))
	}
	return id, nil
}

// queryInt parses an integer query parameter; def when absent.
func queryInt(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p := problem(http.StatusBadRequest, KindInvalid, "query parameter %s must be an integer from %d to %d", name, lo, hi)
		p.Errors = []FieldProblem{{Pointer: "?" + name, Detail: "an integer from " + strconv.FormatInt(lo, 10) + " to " + strconv.FormatInt(hi, 10)}}
		return 0, p
	}
	return n, nil
}

// checkQuery refuses query parameters the route does not take.
func checkQuery(rt route, r *http.Request) error {
	for name := range r.URL.Query() {
		if !slices.ContainsFunc(rt.Params, func(p param) bool { return p.In == "query" && p.Name == name }) {
			p := problem(http.StatusBadRequest, KindInvalid, "unknown query parameter %q", name)
			p.Errors = []FieldProblem{{Pointer: "?" + name, Detail: "unknown parameter"}}
			return p
		}
	}
	return nil
}

// filter reads the enrolment filter of a list request, within what k may
// see: a key limited to one policy lists that one; to several, the caller
// must name one.
func filter(r *http.Request, k *apikey.Key, defState enrol.State) (enrol.Filter, error) {
	q := r.URL.Query()
	f := enrol.Filter{Policy: q.Get("policy"), State: enrol.State(q.Get("state")), Mailbox: q.Get("mailbox")}
	if f.State == "" {
		f.State = defState
	}
	if f.State != "" && !slices.Contains(enrol.States, f.State) {
		p := problem(http.StatusBadRequest, KindInvalid, "unknown state %q", f.State)
		p.Errors = []FieldProblem{{Pointer: "?state", Detail: "one of " + strings.Join(states(), ", ")}}
		return f, p
	}
	var err error
	if f.BatchID, err = queryInt(r, "batch", 0, 1, 1<<62); err != nil {
		return f, err
	}
	if f.Before, err = queryInt(r, "before", 0, 1, 1<<62); err != nil {
		return f, err
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return f, err
	}
	f.Limit = int(limit)
	if f.Policy == "" && len(k.Policies) == 1 {
		f.Policy = k.Policies[0]
	}
	if f.Policy == "" && len(k.Policies) > 1 {
		p := problem(http.StatusForbidden, KindPolicy, "this key is limited to policies %s; name one with ?policy=", strings.Join(k.Policies, ", "))
		return f, p
	}
	return f, checkPolicy(k, f.Policy)
}

func (s *server) list(w http.ResponseWriter, r *http.Request, k *apikey.Key, defState enrol.State) error {
	f, err := filter(r, k, defState)
	if err != nil {
		return err
	}
	es, err := s.enrol.Enrolments(r.Context(), f)
	if err != nil {
		return err
	}
	page := pageJSON[enrolmentJSON]{Items: make([]enrolmentJSON, 0, len(es))}
	for _, e := range es {
		page.Items = append(page.Items, toEnrolment(e))
	}
	if len(es) == f.Limit {
		page.Next = &es[len(es)-1].ID
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *server) listEnrolments(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	return s.list(w, r, k, "")
}

// enrolmentFor loads the enrolment of the {id} path value and checks that
// k may act on its policy. Keys of other policies get the answer an
// unknown ID gets, so they learn nothing of it.
func (s *server) enrolmentFor(ctx context.Context, r *http.Request, k *apikey.Key) (*enrol.Enrolment, error) {
	id, err := pathID(r)
	if err != nil {
		return nil, err
	}
	e, err := s.enrol.Enrolment(ctx, id)
	if err != nil {
		return nil, err
	}
	if !k.AllowsPolicy(e.Policy) {
		return nil, problem(http.StatusNotFound, KindNotFound, "no enrolment %d", id)
	}
	return e, nil
}

type eventJSON struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Object string    `json:"object"`
	Detail string    `json:"detail"`
}

func toEvent(r audit.Record) eventJSON {
	return eventJSON{Seq: r.Seq, At: r.At.UTC(), Actor: r.Actor, Action: r.Action, Object: r.Object, Detail: r.Detail}
}

func (s *server) getEnrolment(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	e, err := s.enrolmentFor(r.Context(), r, k)
	if err != nil {
		return err
	}
	objects := []string{"enrolment:" + strconv.FormatInt(e.ID, 10)}
	if e.Serial != "" {
		objects = append(objects, "certificate:"+e.Serial)
	}
	recs, err := s.store.ObjectEvents(r.Context(), objects, 1000)
	if err != nil {
		return err
	}
	out := struct {
		enrolmentJSON
		History []eventJSON `json:"history"`
	}{toEnrolment(e), make([]eventJSON, 0, len(recs))}
	for _, rec := range recs {
		out.History = append(out.History, toEvent(rec))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *server) approve(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	if err := noBody(r); err != nil {
		return err
	}
	e, err := s.enrolmentFor(r.Context(), r, k)
	if err != nil {
		return err
	}
	if _, err := s.enrol.Approve(r.Context(), k.Actor(), e.ID); err != nil {
		return err
	}
	return s.writeEnrolment(w, r, e.ID, http.StatusOK)
}

type rejectRequest struct {
	Reason string `json:"reason"`
}

func (s *server) reject(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	var req rejectRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	e, err := s.enrolmentFor(r.Context(), r, k)
	if err != nil {
		return err
	}
	if err := s.enrol.Reject(r.Context(), k.Actor(), e.ID, req.Reason); err != nil {
		return err
	}
	return s.writeEnrolment(w, r, e.ID, http.StatusOK)
}

// writeEnrolment writes the enrolment as it is now.
func (s *server) writeEnrolment(w http.ResponseWriter, r *http.Request, id int64, status int) error {
	e, err := s.enrol.Enrolment(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, status, toEnrolment(e))
}

// noBody refuses a body on a route that takes none.
func noBody(r *http.Request) error {
	if r.ContentLength > 0 {
		return problem(http.StatusBadRequest, KindMalformed, "this request takes no body")
	}
	return nil
}

func (s *server) listEvents(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	if len(k.Policies) > 0 {
		return problem(http.StatusForbidden, KindPolicy, "the event log covers every policy; this key is limited to %s", strings.Join(k.Policies, ", "))
	}
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	recs, err := s.store.EventsAfter(r.Context(), after, int(limit))
	if err != nil {
		return err
	}
	out := struct {
		Items []eventJSON `json:"items"`
		Next  int64       `json:"next"`
	}{Items: make([]eventJSON, 0, len(recs)), Next: after}
	for _, rec := range recs {
		out.Next = rec.Seq
		if rec.Action == ReadAction {
			continue
		}
		out.Items = append(out.Items, toEvent(rec))
	}
	return writeJSON(w, http.StatusOK, out)
}
