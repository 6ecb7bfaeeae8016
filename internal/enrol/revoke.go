package enrol

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/errs"
)

// Revocation is a certificate's revocation as the store records it.
type Revocation struct {
	Serial    string // SerialHex form
	IssuerID  string
	Mailbox   string
	SPKIHash  []byte
	NotAfter  time.Time
	RevokedAt time.Time
	Reason    ca.RevocationReason
}

// RevocationTx is what revoking needs of a store transaction; Tx embeds
// it.
type RevocationTx interface {
	// RevokeCertificate revokes the issued certificate with this serial,
	// as of at and for reason, unless it is revoked already. It returns
	// the certificate's revocation (the earlier one when it was revoked
	// before) and whether this call revoked it; ErrNotFound when no issued
	// certificate has the serial.
	RevokeCertificate(serial string, reason ca.RevocationReason, at time.Time) (r *Revocation, revoked bool, err error)
	// BlockKey records that the key with this SPKI hash may never be
	// certified again. Blocking a blocked key is not an error.
	BlockKey(spkiHash []byte, reason string) error
	// EnrolmentBySerial returns the enrolment that issued the certificate
	// with this serial; ErrNotFound when there is none (a certificate
	// issued with 'mailca issue', say).
	EnrolmentBySerial(serial string) (*Enrolment, error)
}

// RevokeResult reports what Revoke did.
type RevokeResult struct {
	Revocation
	// AlreadyRevoked is set when the certificate was revoked before:
	// nothing changed, and Reason and RevokedAt are the earlier ones.
	AlreadyRevoked bool
	EnrolmentID    int64 // 0 when the certificate was issued outside enrolment
	KeyBlocked     bool  // the key may never be certified again (keyCompromise)
}

// reasonText says why a certificate was revoked, in words for its
// subscriber.
var reasonText = map[ca.RevocationReason]string{
	ca.ReasonUnspecified:          "no reason was given",
	ca.ReasonKeyCompromise:        "its private key is known or suspected to have been compromised",
	ca.ReasonAffiliationChanged:   "the details in it have changed (for example your name or your organisation)",
	ca.ReasonSuperseded:           "it has been replaced by a new certificate",
	ca.ReasonCessationOfOperation: "it is no longer needed (for example the mailbox was closed)",
	ca.ReasonPrivilegeWithdrawn:   "the right to hold it was withdrawn",
}

// Revoke revokes the certificate with the given serial (hexadecimal, with
// or without colons) for reason, on behalf of actor. In one transaction it
// marks the certificate revoked, moves its enrolment (if any) to revoked,
// blocks the key for keyCompromise, enqueues the "revoked" email to the
// mailbox in the certificate and appends the audit event. CRLs and OCSP
// responses follow from the stored revocation (see ca.Publisher).
//
// Revoking a revoked certificate changes nothing and reports
// AlreadyRevoked. A reason that is not allowed is an error of kind
// errs.Invalid naming the allowed ones; a serial of no issued certificate,
// of kind errs.NotFound.
func (s *Service) Revoke(ctx context.Context, actor, serial string, reason ca.RevocationReason) (*RevokeResult, error) {
	n, err := ca.ParseSerial(serial)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "invalid serial number")
	}
	if !reason.Allowed() {
		return nil, ca.ReasonError(reason.String())
	}
	if actor == "" {
		return nil, errs.E(errs.Invalid, "a revocation needs an actor for the audit log")
	}
	hex := ca.SerialHex(n)
	var out *RevokeResult
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		out, err = s.revokeIn(tx, actor, hex, reason)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// revokeIn does the work of Revoke inside tx, for the certificate with the
// serial hex (SerialHex form).
func (s *Service) revokeIn(tx Tx, actor, hex string, reason ca.RevocationReason) (*RevokeResult, error) {
	var out *RevokeResult
	rtx := tx
	// 1. The conditional update: of two racing revocations one wins,
	// the other finds the certificate revoked.
	now := s.now().UTC().Truncate(time.Second)
	r, revoked, err := rtx.RevokeCertificate(hex, reason, now)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.E(errs.NotFound, "no issued certificate has serial number %s", hex)
	}
	if err != nil {
		return nil, err
	}
	out = &RevokeResult{Revocation: *r, AlreadyRevoked: !revoked}
	if !revoked {
		return out, nil
	}

	// 2. A compromised key is never certified again.
	if reason == ca.ReasonKeyCompromise {
		if err := rtx.BlockKey(r.SPKIHash, "key compromise: certificate "+hex); err != nil {
			return nil, err
		}
		out.KeyBlocked = true
	}

	// 3. The enrolment that issued it, if any, ends as revoked.
	e, err := rtx.EnrolmentBySerial(hex)
	templates := ""
	switch {
	case errors.Is(err, ErrNotFound):
		e = nil
	case err != nil:
		return nil, err
	default:
		out.EnrolmentID = e.ID
		if p, err := s.policyAtIn(tx, e.Policy, e.PolicyVersion); err == nil {
			templates = p.Templates
		}
		if e.State == Issued {
			from, rev := e.State, e.Rev
			e.State, e.Reason, e.UpdatedAt = Revoked, reason.String(), now
			if err := tx.Transition(e.ID, from, rev, e); err != nil {
				return nil, s.stale(err, e.ID)
			}
		}
	}

	// 4. Tell the subscriber, at the mailbox in the certificate.
	data := map[string]string{
		"Mailbox": r.Mailbox, "GivenName": "", "Surname": "", "Serial": hex,
		"Reason": reasonText[reason], "ReasonCode": reason.String(),
		"RevokedAt": now.Format("2 January 2006 15:04 MST"),
	}
	var enrolmentID int64
	if e != nil {
		data["GivenName"], data["Surname"], enrolmentID = e.GivenName, e.Surname, e.ID
	}
	if r.Mailbox != "" {
		if err := s.enqueue(tx, Mail{Template: "revoked", TemplateSet: templates, To: r.Mailbox, EnrolmentID: enrolmentID, Data: data}); err != nil {
			return nil, err
		}
	}

	// 5. The audit event.
	detail := "reason " + reason.String()
	if e != nil {
		detail += ", enrolment " + strconv.FormatInt(e.ID, 10)
	}
	if out.KeyBlocked {
		detail += ", key blocked"
	}
	if err := tx.Audit(Event{Actor: actor, Action: "certificate.revoke", Object: "certificate:" + hex, Detail: detail}); err != nil {
		return nil, err
	}
	return out, nil
}
