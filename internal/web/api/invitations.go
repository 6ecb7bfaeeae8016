package api

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/csvbatch"
	"github.com/mailca/mailca/internal/enrol"
)

type invitationRequest struct {
	Policy    string            `json:"policy"`
	Email     string            `json:"email"`
	GivenName string            `json:"given_name"`
	Surname   string            `json:"surname"`
	Fields    map[string]string `json:"fields"`
}

func (s *server) createInvitation(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	var req invitationRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Policy == "" {
		p := problem(http.StatusUnprocessableEntity, KindInvalid, "name the policy to invite under")
		p.Errors = []FieldProblem{{Pointer: "/policy", Detail: "required"}}
		return p
	}
	if err := checkPolicy(k, req.Policy); err != nil {
		return err
	}
	e, err := s.enrol.Invite(r.Context(), k.Actor(), req.Policy, enrol.Invitee{Email: req.Email, GivenName: req.GivenName, Surname: req.Surname, Fields: req.Fields})
	if err != nil {
		var ie *enrol.InviteError
		if errors.As(err, &ie) {
			p := toProblem(err)
			p.Errors = []FieldProblem{{Pointer: invitePointer(ie), Detail: strings.TrimSuffix(ie.Reason+": "+ie.Detail, ": ")}}
			return p
		}
		return err
	}
	w.Header().Set("Location", Prefix+"/invitations/"+strconv.FormatInt(e.ID, 10))
	return writeJSON(w, http.StatusCreated, toEnrolment(e))
}

// invitePointer names the member of an invitation that ie is about.
func invitePointer(ie *enrol.InviteError) string {
	switch {
	case ie.Reason == "invalid name" && strings.HasPrefix(ie.Detail, "surname"):
		return "/surname"
	case ie.Reason == "invalid name":
		return "/given_name"
	case ie.Reason == "missing required field":
		return "/fields"
	}
	return "/email"
}

func (s *server) listInvitations(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	return s.list(w, r, k, enrol.Invited)
}

func (s *server) getInvitation(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	e, err := s.enrolmentFor(r.Context(), r, k)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toEnrolment(e))
}

func (s *server) resendInvitation(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	if err := noBody(r); err != nil {
		return err
	}
	e, err := s.enrolmentFor(r.Context(), r, k)
	if err != nil {
		return err
	}
	if err := s.enrol.Resend(r.Context(), k.Actor(), e.ID); err != nil {
		return err
	}
	return s.writeEnrolment(w, r, e.ID, http.StatusOK)
}

type cancelRequest struct {
	Reason string `json:"reason"`
}

func (s *server) cancelInvitation(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	var req cancelRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	e, err := s.enrolmentFor(r.Context(), r, k)
	if err != nil {
		return err
	}
	if err := s.enrol.Cancel(r.Context(), k.Actor(), e.ID, req.Reason); err != nil {
		return err
	}
	return s.writeEnrolment(w, r, e.ID, http.StatusOK)
}

// batchInvitee is one element of a JSON batch.
type batchInvitee struct {
	Email     string            `json:"email"`
	GivenName string            `json:"given_name"`
	Surname   string            `json:"surname"`
	Fields    map[string]string `json:"fields"`
}

type rowJSON struct {
	Line        int    `json:"line"`            // of the CSV file; for a JSON array, index + 2
	Index       *int   `json:"index,omitempty"` // of the JSON array element
	Email       string `json:"email"`
	Invited     bool   `json:"invited"`
	EnrolmentID int64  `json:"enrolment_id,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

type batchJSON struct {
	ID      int64  `json:"id"`
	Policy  string `json:"policy"`
	State   string `json:"state"`
	Rows    int    `json:"rows"`
	Invited int    `json:"invited"`
	Refused int    `json:"refused"`
}

// createInvitations invites a batch. The body, a JSON array or a CSV
// file, is first copied to a temporary file while it is checked (JSON
// syntax, types and members; CSV structure), so a malformed body is
// refused with nothing done and the body is never held in memory. Then
// enrol.InviteCSV runs over the file, the same code as the console's and
// the command line's uploads, and the report is streamed row by row as
// each chunk commits.
func (s *server) createInvitations(w http.ResponseWriter, r *http.Request, k *apikey.Key) error {
	ctx := r.Context()
	policy := r.URL.Query().Get("policy")
	if policy == "" {
		p := problem(http.StatusBadRequest, KindInvalid, "name the policy to invite under with ?policy=")
		p.Errors = []FieldProblem{{Pointer: "?policy", Detail: "required"}}
		return p
	}
	if err := checkPolicy(k, policy); err != nil {
		return err
	}
	mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != "application/json" && mt != "text/csv" {
		return problem(http.StatusUnsupportedMediaType, KindMediaType, "send a JSON array (application/json) or a CSV file (text/csv)")
	}
	p, err := s.enrol.Policy(ctx, policy)
	if err != nil {
		return err
	}
	filename := r.URL.Query().Get("filename")
	if filename == "" {
		filename = "api"
	}
	dir := s.spool
	if dir == "" {
		dir = os.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "upload-*.csv") // the name console.CleanSpool removes
	if err != nil {
		return err
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	// A large batch outlasts the server's default timeouts, which suit
	// ordinary requests; it gets ten minutes.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(10 * time.Minute))
	rc.SetWriteDeadline(time.Now().Add(10 * time.Minute))
	body := http.MaxBytesReader(w, r.Body, s.maxBody)
	isJSON := mt == "application/json"
	if isJSON {
		err = spoolJSON(body, f, p)
	} else {
		err = spoolCSV(body, f)
	}
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}

	// From here on the response is streamed; once the first row is out,
	// an error can only be reported at the end of the body.
	var enc *json.Encoder
	bw := bufio.NewWriterSize(w, 32<<10)
	started, n := false, 0
	start := func() {
		if started {
			return
		}
		started = true
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(bw, `{"policy":%s,"rows":[`, strconv.Quote(p.Name))
		enc = json.NewEncoder(bw)
	}
	b, err := s.enrol.InviteCSV(ctx, k.Actor(), p.Name, filename, f, func(res enrol.RowResult) error {
		start()
		row := rowJSON{Line: res.Line, Email: res.Email, Invited: res.Invited, EnrolmentID: res.EnrolmentID, Reason: res.Reason, Detail: res.Detail}
		if isJSON {
			i := res.Line - 2
			row.Index = &i
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
		if err := enc.Encode(row); err != nil {
			return err
		}
		if bw.Buffered() > 16<<10 {
			bw.Flush()
			rc.Flush()
		}
		return nil
	})
	if !started && err != nil {
		return err
	}
	start()
	bw.WriteString(`]`)
	if b != nil {
		out, _ := json.Marshal(batchJSON{ID: b.ID, Policy: b.Policy, State: b.State, Rows: b.Rows, Invited: b.Invited, Refused: b.Refused})
		bw.WriteString(`,"batch":`)
		bw.Write(out)
	}
	if err != nil {
		pr := toProblem(err)
		if pr.Status >= 500 {
			s.log.Error("api: batch", "err", err)
		}
		pr = &Problem{Type: ProblemBase + KindBatchInterrupt, Title: titles[KindBatchInterrupt], Status: pr.Status,
			Detail: "the batch stopped: " + pr.Detail + "; the rows reported above were committed, send the rest again"}
		out, _ := json.Marshal(pr)
		bw.WriteString(`,"error":`)
		bw.Write(out)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// spoolJSON checks a JSON array of invitees and writes it to f as the
// CSV that enrol.InviteCSV reads: email, given name, surname and the
// policy's custom fields.
func spoolJSON(body io.Reader, f io.Writer, p *enrol.Policy) error {
	var custom []string
	for _, fl := range p.Fields {
		if fl.Name != enrol.FieldGivenName && fl.Name != enrol.FieldSurname {
			custom = append(custom, fl.Name)
		}
	}
	cw := csv.NewWriter(f)
	cw.Write(append([]string{"email", "given_name", "surname"}, custom...))
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return decodeProblem(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return problem(http.StatusBadRequest, KindMalformed, "the body must be a JSON array of invitees")
	}
	rec := make([]string, 3+len(custom))
	for i := 0; dec.More(); i++ {
		var inv batchInvitee
		if err := dec.Decode(&inv); err != nil {
			return indexed(decodeProblem(err), i)
		}
		if strings.TrimSpace(inv.Email) == "" {
			p := problem(http.StatusBadRequest, KindMalformed, "element %d has no email", i)
			p.Errors = []FieldProblem{{Pointer: fmt.Sprintf("/%d/email", i), Detail: "required"}}
			return p
		}
		for name := range inv.Fields {
			if !slices.Contains(custom, name) {
				p := problem(http.StatusBadRequest, KindMalformed, "element %d has a field the policy does not have", i)
				p.Errors = []FieldProblem{{Pointer: fmt.Sprintf("/%d/fields/%s", i, name), Detail: "not a custom field of the policy"}}
				return p
			}
		}
		rec[0], rec[1], rec[2] = inv.Email, inv.GivenName, inv.Surname
		for j, name := range custom {
			rec[3+j] = inv.Fields[name]
		}
		for j, v := range rec {
			if strings.ContainsAny(v, "\r\n") {
				p := problem(http.StatusBadRequest, KindMalformed, "element %d has a value with a line break", i)
				member := []string{"email", "given_name", "surname"}
				ptr := fmt.Sprintf("/%d/", i)
				if j < 3 {
					ptr += member[j]
				} else {
					ptr += "fields/" + custom[j-3]
				}
				p.Errors = []FieldProblem{{Pointer: ptr, Detail: "must be one line"}}
				return p
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeProblem(err)
		}
		return problem(http.StatusBadRequest, KindMalformed, "the body holds more than one JSON value")
	}
	cw.Flush()
	return cw.Error()
}

// indexed prefixes the pointers of a decoding problem with the array
// index of the element it is about.
func indexed(err error, i int) error {
	var p *Problem
	if errors.As(err, &p) {
		p.Detail = fmt.Sprintf("element %d: %s", i, p.Detail)
		for j := range p.Errors {
			p.Errors[j].Pointer = "/" + strconv.Itoa(i) + p.Errors[j].Pointer
		}
	}
	return err
}

// spoolCSV copies a CSV body to f and checks that it reads to the end.
// Bad rows are for the report; a file that cannot be read (broken
// quoting, an overlong record, no email column) is refused whole.
func spoolCSV(body io.Reader, f *os.File) error {
	if _, err := io.Copy(f, body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeProblem(err)
		}
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	rd, err := csvbatch.NewReader(bufio.NewReader(f), csvbatch.Options{})
	if err != nil {
		return problem(http.StatusBadRequest, KindMalformed, "the file cannot be read as an invitation list: %v", err)
	}
	for {
		_, err := rd.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return problem(http.StatusBadRequest, KindMalformed, "the file is broken: %v; nothing was invited", err)
		}
	}
}
