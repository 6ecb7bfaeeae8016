package enrol

import (
	"context"
	"errors"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/errs"
)

// SubscriberReasons are the revocation reasons a subscriber may give for
// their own certificate (S/MIME BR 4.9.1.1); privilegeWithdrawn and
// superseded are the CA's to give.
var SubscriberReasons = []ca.RevocationReason{
	ca.ReasonKeyCompromise, ca.ReasonAffiliationChanged, ca.ReasonCessationOfOperation, ca.ReasonUnspecified,
}

// SelfRevocation is what the page behind a revocation link shows.
type SelfRevocation struct {
	Serial  string
	Mailbox string
	Revoked bool // already revoked, by anyone
}

// OpenRevocationLink returns what a revocation link is for, changing
// nothing (for the GET page).
func (s *Service) OpenRevocationLink(ctx context.Context, token string) (*SelfRevocation, error) {
	l, err := s.revocationLink(ctx, token)
	if err != nil {
		return nil, err
	}
	st, err := s.store.CertificateStatus(ctx, l.Serial)
	if err != nil {
		return nil, err
	}
	return &SelfRevocation{Serial: l.Serial, Mailbox: l.Mailbox, Revoked: st.Revoked()}, nil
}

// RevokeByLink revokes the certificate behind a revocation link, for the
// subscriber who received it, with one of SubscriberReasons.
func (s *Service) RevokeByLink(ctx context.Context, token string, reason ca.RevocationReason) (*RevokeResult, error) {
	allowed := false
	for _, r := range SubscriberReasons {
		allowed = allowed || r == reason
	}
	if !allowed {
		return nil, errs.E(errs.Invalid, "choose one of the reasons offered")
	}
	l, err := s.revocationLink(ctx, token)
	if err != nil {
		return nil, err
	}
	return s.Revoke(ctx, "subscriber:"+l.Mailbox, l.Serial, reason)
}

func (s *Service) revocationLink(ctx context.Context, token string) (*RevocationLink, error) {
	if !validTokenShape(token) {
		return nil, ErrLinkInvalid
	}
	l, err := s.store.RevocationLink(ctx, HashToken(token))
	if errors.Is(err, ErrNotFound) || (err == nil && !s.now().Before(l.ExpiresAt)) {
		return nil, ErrLinkInvalid
	}
	return l, err
}
