package ca

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/errs"
)

// RevocationReason is an RFC 5280 CRLReason code (section 5.3.1).
type RevocationReason int

// The reasons a subscriber certificate may be revoked for: those of RFC 5280
// that the S/MIME Baseline Requirements (4.9.1 and 7.2.2) allow. The others
// (cACompromise, certificateHold, removeFromCRL, aACompromise) are refused.
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonPrivilegeWithdrawn   RevocationReason = 9
)

// reasonNames are the allowed reasons with their RFC 5280 names, in code order.
var reasonNames = []struct {
	r    RevocationReason
	name string
}{
	{ReasonUnspecified, "unspecified"},
	{ReasonKeyCompromise, "keyCompromise"},
	{ReasonAffiliationChanged, "affiliationChanged"},
	{ReasonSuperseded, "superseded"},
	{ReasonCessationOfOperation, "cessationOfOperation"},
	{ReasonPrivilegeWithdrawn, "privilegeWithdrawn"},
}

// String returns the RFC 5280 name of r, such as "keyCompromise", or
// "reason(N)" for a code that is not allowed.
func (r RevocationReason) String() string {
	for _, n := range reasonNames {
		if n.r == r {
			return n.name
		}
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Allowed reports whether a certificate may be revoked for r.
func (r RevocationReason) Allowed() bool {
	for _, n := range reasonNames {
		if n.r == r {
			return true
		}
	}
	return false
}

// RevocationReasons returns the names of the allowed reasons, in code order.
func RevocationReasons() []string {
	out := make([]string, len(reasonNames))
	for i, n := range reasonNames {
		out[i] = n.name
	}
	return out
}

// ParseRevocationReason returns the reason named s: an RFC 5280 name
// ("keyCompromise"), matched without regard to case, hyphens or
// underscores ("key-compromise" will do). Any other name, a forbidden
// reason such as certificateHold included, is an error of kind
// errs.Invalid that lists the allowed names.
func ParseRevocationReason(s string) (RevocationReason, error) {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(s))
	}
	for _, n := range reasonNames {
		if fold(s) == fold(n.name) {
			return n.r, nil
		}
	}
	return 0, ReasonError(s)
}

// ReasonError returns the error for a revocation reason that is not
// allowed: of kind errs.Invalid, naming the allowed reasons.
func ReasonError(reason string) error {
	return errs.E(errs.Invalid, "ca: revocation reason %q is not allowed; use one of %s", reason, strings.Join(RevocationReasons(), ", "))
}

// ErrUnknownCertificate is returned by a status store when no certificate
// has the serial asked for.
var ErrUnknownCertificate = errors.New("ca: no certificate with that serial number")

// ErrUnknownIssuer is returned for an issuer ID that names none of ours.
var ErrUnknownIssuer = errors.New("ca: unknown issuer")

// CertificateStatus is what the store knows of one certificate's status.
type CertificateStatus struct {
	IssuerID string
	// Issued is true once the certificate has been signed and stored;
	// a serial that is only reserved, or refused by the linter, is not.
	Issued    bool
	NotAfter  time.Time
	RevokedAt time.Time // zero unless revoked
	Reason    RevocationReason
}

// Revoked reports whether the certificate is revoked.
func (s CertificateStatus) Revoked() bool { return !s.RevokedAt.IsZero() }
