package enrolment

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// Names of the form's own inputs; the policy's fields are "f_<name>", so
// no custom field can collide with them.
const (
	inputAccept       = "accept_terms"
	inputTermsVersion = "terms_version"
	inputReferral     = "t"
	fieldPrefix       = "f_"
)

// readApplication reads the enrolment form.
func readApplication(form url.Values) enrol.Application {
	a := enrol.Application{
		GivenName:    form.Get(fieldPrefix + enrol.FieldGivenName),
		Surname:      form.Get(fieldPrefix + enrol.FieldSurname),
		Fields:       map[string]string{},
		AcceptTerms:  form.Get(inputAccept) == "yes",
		TermsVersion: form.Get(inputTermsVersion),
	}
	for k, vs := range form {
		name, ok := strings.CutPrefix(k, fieldPrefix)
		if ok && len(vs) > 0 && name != enrol.FieldGivenName && name != enrol.FieldSurname {
			a.Fields[name] = vs[0]
		}
	}
	return a
}

// known returns the values an enrolment already has, by field name: what
// the form shows before the user types, and all it shows of read-only fields.
func known(givenName, surname string, fields map[string]string) map[string]string {
	k := map[string]string{enrol.FieldGivenName: givenName, enrol.FieldSurname: surname}
	for n, v := range fields {
		if n != enrol.FieldGivenName && n != enrol.FieldSurname {
			k[n] = v
		}
	}
	return k
}

// formView builds the enrolment form of policy p for mailbox. posted holds
// what the user sent (nil on first display), fe the problems found in it.
func formView(p *enrol.Policy, mailbox string, values map[string]string, posted url.Values, fe *enrol.FormError) *FormView {
	v := &FormView{
		Page:        Page{Title: "Apply for your email certificate", Set: p.Templates, Policy: p.Name, HasErrors: fe != nil},
		Heading:     "Apply for your email certificate",
		Description: p.Description,
		Mailbox:     mailbox,
		GivenName:   values[enrol.FieldGivenName],
		Terms:       TermsView{Version: p.Terms.Version, Text: p.Terms.Text},
	}
	problems := map[string]string{}
	if fe != nil {
		problems = fe.Problems
	}
	for _, f := range p.Fields {
		fv := FieldView{
			Name: f.Name, ID: "f-" + f.Name, InputName: fieldPrefix + f.Name,
			Label: f.Label, Help: f.Help, Required: f.Required, Editable: f.Editable,
			MaxLength: maxLength(f), Value: values[f.Name],
		}
		if fv.Label == "" {
			fv.Label = strings.ToUpper(f.Name[:1]) + strings.ReplaceAll(f.Name[1:], "_", " ")
		}
		if f.Editable && posted != nil {
			fv.Value = posted.Get(fv.InputName)
		}
		switch f.Name {
		case enrol.FieldGivenName:
			fv.Autocomplete = "given-name"
		case enrol.FieldSurname:
			fv.Autocomplete = "family-name"
		}
		var ids []string
		if fv.Help != "" {
			fv.Hint = fv.ID + "-hint"
			ids = append(ids, fv.Hint)
		}
		if !fv.Editable {
			fv.ReadOnlyNote = fv.ID + "-ro"
			ids = append(ids, fv.ReadOnlyNote)
		}
		if msg, ok := problems[f.Name]; ok {
			fv.Error = sentence(fv.Label + " " + msg)
			if !fv.Editable {
				fv.Error += " Ask your administrator to correct it."
			}
			fv.ErrorID = fv.ID + "-error"
			ids = append(ids, fv.ErrorID)
			v.Problems = append(v.Problems, Problem{ID: fv.ID, Text: fv.Error})
		}
		fv.DescribedBy = strings.Join(ids, " ")
		v.Fields = append(v.Fields, fv)
	}
	if msg, ok := problems["terms"]; ok {
		v.Terms.Error = sentence(msg)
		v.Problems = append(v.Problems, Problem{ID: "accept-terms", Text: v.Terms.Error})
	} else if posted != nil {
		v.Terms.Accepted = posted.Get(inputAccept) == "yes"
	}
	// Problems with fields the form does not show (a policy changed
	// meanwhile) still reach the user.
	for name, msg := range problems {
		if _, shown := p.Field(name); !shown && name != "terms" {
			v.Problems = append(v.Problems, Problem{ID: "main", Text: sentence(name + " " + msg)})
		}
	}
	return v
}

// maxLength mirrors the limits enrol applies to a field.
func maxLength(f enrol.Field) int {
	n := f.MaxLength
	if n == 0 {
		n = 256
	}
	if f.Name == enrol.FieldGivenName || f.Name == enrol.FieldSurname {
		n = min(n, 64)
	}
	return n
}

// submittedView is the page after a successful submission.
func submittedView(e *enrol.Enrolment, p *enrol.Policy) *SubmittedView {
	v := &SubmittedView{Page: Page{Title: "Thank you"}, Mailbox: e.Mailbox, GivenName: e.GivenName, Approved: e.State == enrol.Approved}
	if p != nil {
		v.Set, v.Policy = p.Templates, p.Name
		v.LinkLifetime = lifetime(time.Duration(p.ActivationLifetime))
	}
	return v
}

// badRequest classifies a form that could not be read: too large stays
// itself (413), anything else is invalid input.
func badRequest(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return err
	}
	return errs.Wrap(errs.Invalid, err, "the form could not be read; send it again")
}
