package ca

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mailca/mailca/internal/errs"
)

// Reason says why a certificate request was refused.
type Reason int

const (
	UnknownProfile    Reason = iota + 1 // no profile of that name
	BadCSR                              // the CSR does not parse or its signature is wrong
	WeakKey                             // the key's type or size is not allowed
	KeyReused                           // the key is in another certificate, or blocked
	BadMailbox                          // the mailbox cannot be put in a certificate
	SubjectNotAllowed                   // a subject field the profile does not allow
	BadValidity                         // validity outside what the BR allow
	AlreadyIssued                       // a live certificate already carries the request's Once key
)

var reasonText = map[Reason]string{
	UnknownProfile:    "unknown certificate profile",
	BadCSR:            "invalid certificate signing request",
	WeakKey:           "key not allowed",
	KeyReused:         "key already used",
	BadMailbox:        "mailbox not allowed in a certificate",
	SubjectNotAllowed: "subject field not allowed by the profile",
	BadValidity:       "validity not allowed",
	AlreadyIssued:     "certificate already issued",
}

func (r Reason) String() string { return reasonText[r] }

// RequestError is returned when the request itself is wrong; nothing was
// signed. Callers tell reasons apart with errors.As and Reason.
type RequestError struct {
	Reason Reason
	Detail string
}

func (e *RequestError) Error() string {
	if e.Detail == "" {
		return "ca: " + e.Reason.String()
	}
	return "ca: " + e.Reason.String() + ": " + e.Detail
}

// Kind reports the request as invalid (or a conflict, for a reused key).
func (e *RequestError) Kind() errs.Kind {
	if e.Reason == KeyReused || e.Reason == AlreadyIssued {
		return errs.Conflict
	}
	return errs.Invalid
}

// Finding is one lint result that stopped issuance.
type Finding struct {
	Lint    string // zlint's name, e.g. "e_sub_cert_key_usage_cert_sign_bit_set"
	Status  string // "error", "warn" or "fatal"
	Details string
}

// LintError is returned when the pre-issuance lint of a certificate found
// errors or warnings; the real key signed nothing.
type LintError struct {
	Findings []Finding
}

func (e *LintError) Error() string {
	parts := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		parts[i] = fmt.Sprintf("%s (%s", f.Lint, f.Status)
		if f.Details != "" {
			parts[i] += ": " + f.Details
		}
		parts[i] += ")"
	}
	return "ca: issuance refused by lint: " + strings.Join(parts, "; ")
}

// Kind reports a lint refusal as internal: the request passed validation,
// so a lint finding means a profile or configuration fault of ours.
func (e *LintError) Kind() errs.Kind { return errs.Internal }

// ErrTokenRedeemed is returned by Sign for a Prepared that was already signed.
var ErrTokenRedeemed = errors.New("ca: prepared certificate already signed")

// ErrSerialTaken is returned by a Store when the serial exists already.
var ErrSerialTaken = errors.New("ca: serial number already used")

// ErrOnceTaken is returned by a Store when a live certificate already
// carries the reservation's Once key.
var ErrOnceTaken = errors.New("ca: a certificate was already issued for this request")

// ErrKeyInUse is returned by a Store when the subject public key is in a
// certificate already or is blocked (for example after a key compromise).
var ErrKeyInUse = errors.New("ca: key already used")
