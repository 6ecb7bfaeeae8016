package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// ProblemBase prefixes the type URI of every problem; the rest names the
// kind ("urn:mailca:problem:insufficient-scope"). Clients switch on it.
const ProblemBase = "urn:mailca:problem:"

// Problem kinds: the last part of a problem's type URI.
const (
	KindMalformed      = "malformed-body"     // the body is not JSON, or not the JSON expected (types, unknown fields)
	KindInvalid        = "invalid"            // the request is well-formed but its values are refused
	KindUnauthorized   = "unauthenticated"    // no key, or a key that does not work
	KindScope          = "insufficient-scope" // the key lacks the scope for this action
	KindPolicy         = "policy-not-allowed" // the key may not act on this policy
	KindForbidden      = "forbidden"          // the policy forbids the action
	KindNotFound       = "not-found"          // no such resource or route
	KindConflict       = "conflict"           // the resource is not in a state that allows the action
	KindTooLarge       = "body-too-large"     // the body exceeds the route's limit
	KindMediaType      = "unsupported-media-type"
	KindMethod         = "method-not-allowed"
	KindRateLimited    = "rate-limited"      // too many requests with this key; see Retry-After
	KindInternal       = "internal"          // our fault; the detail is in our log only
	KindBatchInterrupt = "batch-interrupted" // a streamed batch stopped; the rows reported before were committed
)

// ProblemKinds lists every kind, for the documentation.
var ProblemKinds = []string{KindMalformed, KindInvalid, KindUnauthorized, KindScope, KindPolicy, KindForbidden,
	KindNotFound, KindConflict, KindTooLarge, KindMediaType, KindMethod, KindRateLimited, KindInternal, KindBatchInterrupt}

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type   string         `json:"type"`
	Title  string         `json:"title"`
	Status int            `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Errors []FieldProblem `json:"errors,omitempty"`

	err error // the cause, for the log
}

// FieldProblem names one wrong member of the request: a JSON pointer
// (RFC 6901) into the body, or the name of a query parameter.
type FieldProblem struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

var titles = map[string]string{
	KindMalformed: "Malformed request body", KindInvalid: "Invalid request", KindUnauthorized: "Authentication required",
	KindScope: "Insufficient scope", KindPolicy: "Policy not allowed for this key", KindForbidden: "Forbidden",
	KindNotFound: "Not found", KindConflict: "Conflict", KindTooLarge: "Request body too large",
	KindMediaType: "Unsupported media type", KindMethod: "Method not allowed", KindRateLimited: "Too many requests",
	KindInternal: "Internal error", KindBatchInterrupt: "Batch interrupted",
}

func problem(status int, kind, format string, args ...any) *Problem {
	return &Problem{Type: ProblemBase + kind, Title: titles[kind], Status: status, Detail: fmt.Sprintf(format, args...)}
}

// toProblem maps an error to the problem a client sees: domain errors by
// their kind with their user-safe message, anything else as internal.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return problem(http.StatusRequestEntityTooLarge, KindTooLarge, "the body exceeds %d bytes", mbe.Limit)
	}
	var out *Problem
	switch errs.KindOf(err) {
	case errs.Invalid:
		out = problem(http.StatusUnprocessableEntity, KindInvalid, "%s", errs.Message(err))
		var fe *enrol.FormError
		if errors.As(err, &fe) {
			for field, msg := range fe.Problems {
				out.Errors = append(out.Errors, FieldProblem{Pointer: "/" + field, Detail: msg})
			}
		}
	case errs.NotFound:
		out = problem(http.StatusNotFound, KindNotFound, "%s", errs.Message(err))
	case errs.Conflict:
		out = problem(http.StatusConflict, KindConflict, "%s", errs.Message(err))
	case errs.Forbidden:
		out = problem(http.StatusForbidden, KindForbidden, "%s", errs.Message(err))
	default:
		out = problem(http.StatusInternalServerError, KindInternal, "internal error")
	}
	out.err = err
	return out
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Del("Content-Length")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="mailca"`)
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// retryAfter sets Retry-After in whole seconds, at least one.
func retryAfter(w http.ResponseWriter, secs float64) {
	n := int(secs + 0.999)
	w.Header().Set("Retry-After", strconv.Itoa(max(n, 1)))
}
