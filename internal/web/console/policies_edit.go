package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// maxPolicyBytes bounds a policy document typed into the editor.
const maxPolicyBytes = 64 << 10

// policyForm is the data of the policy_edit view.
type policyForm struct {
	Name     string // "" for a new policy
	Version  int    // the version being edited (posted back as base), 0 for a new policy
	Next     int    // the version saving makes
	Body     string // the document as typed or as stored, in YAML
	Lines    []policyLine
	Problems []lineProblem
	Message  string
	Errors   map[string]string // by form field: "policy", "new_name"
	NewName  string
}

// policyLine is one line of the document, with the problems found on it,
// for the listing that shows each problem next to its line.
type policyLine struct {
	N        int
	Text     string
	Problems []lineProblem
}

// lineProblem is a problem with one setting and the line it is on (0 when
// the document has no line for it, such as a required setting left out).
type lineProblem struct {
	Line  int
	Field string
	Msg   string
}

// encodePolicy writes p as the YAML a policy file holds: without its
// version, which the store numbers.
func encodePolicy(p *enrol.Policy) (string, error) {
	q := *p
	q.Version = 0
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&q); err != nil {
		return "", err
	}
	return b.String(), enc.Close()
}

// yamlLine finds "line N" in a YAML or JSON decoding error.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// decodePolicy reads a policy typed as YAML or JSON, refusing unknown
// settings, as "mailca policy import" does: a misspelt setting silently
// ignored is a policy not applied.
func decodePolicy(body string) (*enrol.Policy, []lineProblem) {
	var p enrol.Policy
	if t := strings.TrimSpace(body); strings.HasPrefix(t, "{") {
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			line := 0
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line = strings.Count(body[:min(int(se.Offset), len(body))], "\n") + 1
			}
			return nil, []lineProblem{{Line: line, Msg: "not a valid policy in JSON: " + err.Error()}}
		}
		return &p, nil
	}
	dec := yaml.NewDecoder(strings.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var out []lineProblem
			for _, msg := range te.Errors {
				out = append(out, lineProblem{Line: firstLine(msg), Msg: msg})
			}
			return nil, out
		}
		return nil, []lineProblem{{Line: firstLine(err.Error()), Msg: "not a valid policy in YAML: " + err.Error()}}
	}
	return &p, nil
}

func firstLine(msg string) int {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// settingLines places each validation problem on the line of its setting
// ("approval.mode", "fields[2].pattern") in body, or of the nearest
// enclosing setting the document has.
func settingLines(body string, probs []enrol.FieldError) []lineProblem {
	var root yaml.Node
	yaml.Unmarshal([]byte(body), &root) // a decoded document parses again
	out := make([]lineProblem, len(probs))
	for i, pr := range probs {
		out[i] = lineProblem{Line: nodeLine(&root, pr.Field), Field: pr.Field, Msg: pr.Msg}
	}
	return out
}

// pathPart matches one step of a setting's path: a key and an optional index.
var pathPart = regexp.MustCompile(`^([a-z_]+)(?:\[(\d+)\])?$`)

func nodeLine(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, step := range strings.Split(path, ".") {
		m := pathPart.FindStringSubmatch(step)
		if m == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == m[1] {
				line, next = n.Content[i].Line, n.Content[i+1]
				break
			}
		}
		if next == nil {
			return line
		}
		n = next
		if m[2] != "" {
			k, _ := strconv.Atoi(m[2])
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}

// withListing fills the numbered listing of the document, each problem
// after its line.
func (f *policyForm) withListing() {
	for i, text := range strings.Split(strings.TrimRight(f.Body, "\n"), "\n") {
		pl := policyLine{N: i + 1, Text: text}
		for _, pr := range f.Problems {
			if pr.Line == i+1 {
				pl.Problems = append(pl.Problems, pr)
			}
		}
		f.Lines = append(f.Lines, pl)
	}
}

// renderPolicy shows the editor; with problems, the listing too.
func (c *Console) renderPolicy(w http.ResponseWriter, r *http.Request, status int, f policyForm) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	f.Next = f.Version + 1
	if len(f.Problems) > 0 {
		f.withListing()
	}
	c.render(w, r, status, "policy_edit", f)
}

// policyEdit shows a policy's current version in the editor.
//
// Pattern: GET /console/policies/{name}.
func (c *Console) policyEdit(w http.ResponseWriter, r *http.Request) {
	p, err := c.cfg.Enrol.Policy(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	body, err := encodePolicy(p)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderPolicy(w, r, http.StatusOK, policyForm{Name: p.Name, Version: p.Version, Body: body})
}

// policyNew shows the editor with the default policy to start from.
//
// Pattern: GET /console/policies/new.
func (c *Console) policyNew(w http.ResponseWriter, r *http.Request) {
	p := enrol.DefaultPolicy()
	p.Name, p.Description = "", ""
	body, err := encodePolicy(p)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.renderPolicy(w, r, http.StatusOK, policyForm{Body: body})
}

// policySave saves the edited document as the policy's next version,
// unless another version was saved since the one the editor showed
// (base): then the form comes back saying so, the typed document kept.
//
// Pattern: POST /console/policies/{name} (policy, base).
func (c *Console) policySave(w http.ResponseWriter, r *http.Request) {
	cur, err := c.cfg.Enrol.Policy(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	base, err := strconv.Atoi(r.PostFormValue("base"))
	if err != nil || base < 1 {
		c.fail(w, r, errs.E(errs.Invalid, "the form does not say which version it edits; open the policy again"))
		return
	}
	c.savePolicy(w, r, policyForm{Name: cur.Name, Version: base, Body: r.PostFormValue("policy")})
}

// policyCreate saves a new policy's first version.
//
// Pattern: POST /console/policies (policy).
func (c *Console) policyCreate(w http.ResponseWriter, r *http.Request) {
	c.savePolicy(w, r, policyForm{Body: r.PostFormValue("policy")})
}

// savePolicy decodes f.Body and saves it through enrol.Service.SavePolicy,
// which validates it; every problem is shown next to its line. A new
// policy may not take an existing name, and an edit may not rename.
func (c *Console) savePolicy(w http.ResponseWriter, r *http.Request, f policyForm) {
	f.Body = strings.ReplaceAll(f.Body, "\r\n", "\n")
	if len(f.Body) > maxPolicyBytes {
		f.Message = fmt.Sprintf("the policy is longer than %d KiB", maxPolicyBytes>>10)
		c.renderPolicy(w, r, http.StatusBadRequest, f)
		return
	}
	p, probs := decodePolicy(f.Body)
	if probs != nil {
		f.Problems = probs
		c.renderPolicy(w, r, http.StatusBadRequest, f)
		return
	}
	switch {
	case f.Name != "" && p.Name != f.Name:
		f.Problems = []lineProblem{{Line: nodeLine(parseNode(f.Body), "name"), Field: "name",
			Msg: fmt.Sprintf("must stay %q: to make a policy under another name, clone this one", f.Name)}}
	case f.Name == "" && p.Name != "":
		if _, err := c.cfg.Enrol.Policy(r.Context(), p.Name); err == nil {
			f.Problems = []lineProblem{{Line: nodeLine(parseNode(f.Body), "name"), Field: "name", Msg: fmt.Sprintf("a policy named %q exists; edit it instead", p.Name)}}
		} else if errs.KindOf(err) != errs.NotFound {
			c.fail(w, r, err)
			return
		}
	}
	if f.Problems != nil {
		c.renderPolicy(w, r, http.StatusBadRequest, f)
		return
	}
	v, err := c.cfg.Enrol.SavePolicyOver(r.Context(), auth.FromContext(r.Context()).Actor(), p, f.Version)
	var ve *enrol.ValidationError
	switch {
	case errors.As(err, &ve):
		f.Problems = settingLines(f.Body, ve.Problems)
		c.renderPolicy(w, r, http.StatusBadRequest, f)
		return
	case errs.KindOf(err) == errs.Conflict:
		f.Message = errs.Message(err)
		c.renderPolicy(w, r, http.StatusConflict, f)
		return
	case err != nil:
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, "/console/policies/"+p.Name, fmt.Sprintf("Policy %s saved as version %d.", p.Name, v))
}

// audit records a change the enrolment service does not record itself.
// The change is made, so a failure to record it is logged, not shown.
func (c *Console) audit(r *http.Request, action, object, detail string) {
	if err := c.cfg.Store.ConsoleAudit(r.Context(), auth.FromContext(r.Context()).Actor(), action, object, detail); err != nil {
		c.log.ErrorContext(r.Context(), "console: audit event not recorded", "action", action, "object", object, "err", err)
	}
}

func parseNode(body string) *yaml.Node {
	var n yaml.Node
	yaml.Unmarshal([]byte(body), &n)
	return &n
}

// policyClone saves a copy of a policy's current version under a new name.
//
// Pattern: POST /console/policies/{name}/clone (new_name).
func (c *Console) policyClone(w http.ResponseWriter, r *http.Request) {
	p, err := c.cfg.Enrol.Policy(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	body, err := encodePolicy(p)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	f := policyForm{Name: p.Name, Version: p.Version, Body: body, NewName: strings.TrimSpace(r.PostFormValue("new_name")), Errors: map[string]string{}}
	if _, err := c.cfg.Enrol.Policy(r.Context(), f.NewName); err == nil {
		f.Errors["new_name"] = fmt.Sprintf("a policy named %q exists", f.NewName)
	} else if errs.KindOf(err) != errs.NotFound {
		c.fail(w, r, err)
		return
	}
	if len(f.Errors) == 0 {
		p.Name, p.Version = f.NewName, 0
		var v int
		v, err = c.cfg.Enrol.SavePolicyOver(r.Context(), auth.FromContext(r.Context()).Actor(), p, 0)
		var ve *enrol.ValidationError
		switch {
		case errs.KindOf(err) == errs.Conflict:
			f.Errors["new_name"] = fmt.Sprintf("a policy named %q exists", f.NewName)
		case errors.As(err, &ve):
			for _, pr := range ve.Problems {
				if pr.Field == "name" {
					f.Errors["new_name"] = pr.Msg
				} else {
					f.Message = "the copy is not valid: " + ve.Error()
				}
			}
		case err != nil:
			c.fail(w, r, err)
			return
		default:
			// enrol records the save; this says where the copy came from.
			c.audit(r, "policy.clone", "policy:"+p.Name, fmt.Sprintf("version %d, a copy of %s version %d", v, f.Name, f.Version))
			c.redirect(w, r, "/console/policies/"+p.Name, fmt.Sprintf("Policy %s is a copy of %s.", p.Name, r.PathValue("name")))
			return
		}
	}
	c.renderPolicy(w, r, http.StatusBadRequest, f)
}
