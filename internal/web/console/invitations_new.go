package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// inviteForm is the data of the invitation_new view.
type inviteForm struct {
	Policies  []string
	Policy    string
	Custom    []enrol.Field // the chosen policy's fields other than the names
	Email     string
	GivenName string
	Surname   string
	Values    map[string]string // custom field values
	Errors    map[string]string // by form field name
	Message   string            // a problem that is no one field's
}

// reservedFields are the form's own fields, which a custom field may not
// shadow.
var reservedFields = []string{"policy", "email", "name", enrol.FieldGivenName, enrol.FieldSurname, "back"}

// loadInviteForm fills the policy choice and the chosen policy's custom
// fields; the policy is the one asked for, else "default", else the first.
func (c *Console) loadInviteForm(ctx context.Context, p *auth.Principal, f *inviteForm) error {
	var err error
	if f.Policies, err = c.visiblePolicies(ctx, p); err != nil {
		return err
	}
	if !slices.Contains(f.Policies, f.Policy) {
		if f.Policy != "" && f.Errors["policy"] == "" {
			f.Errors["policy"] = "choose one of the policies listed"
		}
		f.Policy = ""
		if slices.Contains(f.Policies, "default") {
			f.Policy = "default"
		} else if len(f.Policies) > 0 {
			f.Policy = f.Policies[0]
		}
	}
	if f.Policy == "" {
		return nil
	}
	pol, err := c.cfg.Enrol.Policy(ctx, f.Policy)
	if err != nil {
		return err
	}
	for _, fd := range pol.Fields {
		if fd.Name != enrol.FieldGivenName && fd.Name != enrol.FieldSurname && !slices.Contains(reservedFields, fd.Name) {
			f.Custom = append(f.Custom, fd)
		}
	}
	return nil
}

// invitationNew shows the form that invites one person; the policy query
// value chooses the policy whose custom fields it shows.
//
// Pattern: GET /console/invitations/new (policy).
func (c *Console) invitationNew(w http.ResponseWriter, r *http.Request) {
	f := inviteForm{Policy: r.URL.Query().Get("policy"), Values: map[string]string{}, Errors: map[string]string{}}
	if err := c.loadInviteForm(r.Context(), auth.FromContext(r.Context()), &f); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "invitation_new", f)
}

// invitationCreate invites one person (enrol.Service.Invite) and shows
// their enrolment; a refusal shows the form again with the reason next to
// the field it concerns.
//
// Pattern: POST /console/invitations (policy, email, given_name, surname or
// name, and the policy's custom fields by their names).
func (c *Console) invitationCreate(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	f := inviteForm{Policy: r.PostFormValue("policy"), Email: strings.TrimSpace(r.PostFormValue("email")),
		GivenName: r.PostFormValue("given_name"), Surname: r.PostFormValue("surname"),
		Values: map[string]string{}, Errors: map[string]string{}}
	if name := strings.TrimSpace(r.PostFormValue("name")); name != "" && f.GivenName == "" && f.Surname == "" {
		// One "name" field: the last word is the surname.
		words := strings.Fields(name)
		f.Surname, f.GivenName = words[len(words)-1], strings.Join(words[:len(words)-1], " ")
	}
	chosen := f.Policy
	if err := c.loadInviteForm(r.Context(), p, &f); err != nil {
		c.fail(w, r, err)
		return
	}
	if chosen != f.Policy {
		f.Errors["policy"] = "choose one of the policies listed"
		c.render(w, r, http.StatusBadRequest, "invitation_new", f)
		return
	}
	inv := enrol.Invitee{Email: f.Email, GivenName: f.GivenName, Surname: f.Surname}
	for _, fd := range f.Custom {
		if v := r.PostFormValue(fd.Name); v != "" {
			f.Values[fd.Name] = v
			if inv.Fields == nil {
				inv.Fields = map[string]string{}
			}
			inv.Fields[fd.Name] = v
		}
	}
	if f.Email == "" {
		f.Errors["email"] = "enter the mailbox to invite"
		c.render(w, r, http.StatusBadRequest, "invitation_new", f)
		return
	}
	e, err := c.cfg.Enrol.Invite(r.Context(), p.Actor(), f.Policy, inv)
	if err != nil {
		var ie *enrol.InviteError
		switch {
		case errors.As(err, &ie):
			msg := ie.Reason
			if ie.Detail != "" {
				msg += ": " + ie.Detail
			}
			f.Errors[inviteErrorField(ie)] = msg
		case errs.KindOf(err) != errs.Internal:
			f.Message = errs.Message(err)
		default:
			c.fail(w, r, err)
			return
		}
		c.render(w, r, statusOf(err), "invitation_new", f)
		return
	}
	c.redirect(w, r, "/console/enrolments/"+strconv.FormatInt(e.ID, 10), "Invitation sent to "+e.Mailbox+".")
}

// inviteErrorField names the form field an invitation refusal concerns.
func inviteErrorField(ie *enrol.InviteError) string {
	switch {
	case ie.Reason == "invalid name" && strings.HasPrefix(ie.Detail, "surname"):
		return enrol.FieldSurname
	case ie.Reason == "invalid name":
		return enrol.FieldGivenName
	}
	return "email"
}

// statusOf is the status of a form shown again with err.
func statusOf(err error) int {
	switch errs.KindOf(err) {
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Forbidden:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}
