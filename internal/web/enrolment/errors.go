package enrolment

import (
	"errors"
	"net/http"
	"strings"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// status maps an error to the HTTP status of the page that reports it.
func status(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	switch errs.KindOf(err) {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Forbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// userMessage returns what the user may read about err: the domain's
// user-safe message, never the detail of an internal error.
func userMessage(err error) string {
	var (
		mbe *http.MaxBytesError
		ee  *errs.Error
		re  *ca.RequestError
		ie  *enrol.InviteError
		fe  *enrol.FormError
	)
	switch {
	case errors.As(err, &mbe):
		return "the request is too large"
	case errs.KindOf(err) == errs.Internal:
		return "internal error"
	case errors.As(err, &ee):
		return ee.Msg
	case errors.As(err, &re):
		if re.Detail == "" {
			return re.Reason.String()
		}
		return re.Reason.String() + ": " + re.Detail
	case errors.As(err, &ie):
		return inviteMessage(ie)
	case errors.As(err, &fe):
		return "the form has problems; correct them and send it again"
	}
	return errs.Message(err)
}

// inviteMessage words a refused mailbox for the person who entered it.
func inviteMessage(ie *enrol.InviteError) string {
	switch ie.Reason {
	case "invalid mailbox":
		// mailbox errors end in the reason, after the quoted input.
		why := ie.Detail
		if i := strings.LastIndex(why, ": "); i >= 0 {
			why = why[i+2:]
		}
		return "enter one email address, such as name@example.org (the " + why + ")"
	case "domain not allowed":
		return "addresses at " + ie.Detail + " cannot enrol here"
	case "already invited or active":
		return "this address already has an application or a certificate under this policy"
	}
	if ie.Detail != "" {
		return ie.Detail
	}
	return ie.Reason
}

// fail answers with the error page for err. Internal errors are logged in
// full and shown as "internal error" only; secrets are cut from the log.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, set string, err error, secrets ...string) {
	code := status(err)
	v := &ErrorView{Page: Page{Set: set}, Status: code, Message: sentence(userMessage(err))}
	switch {
	case errors.Is(err, enrol.ErrLinkInvalid):
		v.Heading, v.BadLink = "This link does not work", true
		v.Set = "" // a bad link tells nothing of its policy
	case code == http.StatusInternalServerError:
		h.log.ErrorContext(r.Context(), "enrolment: request failed", "route", r.Pattern, "err", redact(err, secrets))
		v.Heading = "Internal error"
	case code == http.StatusNotFound:
		v.Heading = "Not found"
	case code == http.StatusConflict:
		v.Heading = "This cannot be done now"
	case code == http.StatusForbidden:
		v.Heading = "Not allowed"
	case code == http.StatusRequestEntityTooLarge:
		v.Heading = "Too much data"
	default:
		v.Heading = "This did not work"
	}
	v.Title = v.Heading
	h.views.render(w, r, code, "error", v, secrets...)
}

// RenderError answers with the error page for status and a user-safe
// message; package web uses it for requests refused before any handler.
func (h *Handler) RenderError(w http.ResponseWriter, r *http.Request, status int, heading, msg string) {
	v := &ErrorView{Page: Page{Title: heading}, Status: status, Heading: heading, Message: sentence(msg)}
	h.views.render(w, r, status, "error", v)
}

// NotFound answers every request no route matches.
func (h *Handler) NotFound(w http.ResponseWriter, r *http.Request) {
	h.RenderError(w, r, http.StatusNotFound, "Page not found",
		"there is no page at this address; if you followed a link from an email, check that you copied all of it")
}
