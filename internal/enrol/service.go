package enrol

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/p12"
)

// BRVersion is the version of the S/MIME Baseline Requirements whose
// mailbox validation method mailca follows; recorded with each validation.
const BRVersion = "1.0.11"

// Issuer issues certificates; *ca.Engine is one.
type Issuer interface {
	Issue(ctx context.Context, req ca.Request) (*ca.Certificate, error)
}

// Config configures a Service.
type Config struct {
	Store     Store
	Issuer    Issuer
	PublicURL string           // origin of the links in emails
	Now       func() time.Time // nil means time.Now
	// ServerKeyType is the type of server-generated subscriber keys;
	// default RSA 2048, which every mail client imports.
	ServerKeyType keys.Type
	// Observer counts committed transitions; nil means none.
	Observer Observer
}

// Service runs the enrolment process. Every method that changes state does
// so in one transaction with its audit event and the emails it causes.
type Service struct {
	store   Store
	issuer  Issuer
	public  string
	host    string // of PublicURL, for Message-IDs
	now     func() time.Time
	keyType keys.Type
	obs     Observer

	// versions caches decoded policy versions, which never change once
	// stored. Values are shared: treat them as read-only.
	versions sync.Map // policyKey -> *Policy
}

type policyKey struct {
	name    string
	version int
}

// NewService returns a Service for cfg.
func NewService(cfg Config) *Service {
	s := &Service{store: cfg.Store, issuer: cfg.Issuer, public: strings.TrimRight(cfg.PublicURL, "/"), now: cfg.Now, keyType: cfg.ServerKeyType}
	if s.now == nil {
		s.now = time.Now
	}
	s.host = "mailca.localhost"
	if u, err := url.Parse(s.public); err == nil && u.Hostname() != "" {
		s.host = u.Hostname()
	}
	if s.keyType == "" {
		s.keyType = keys.RSA2048
	}
	if s.obs = cfg.Observer; s.obs == nil {
		s.obs = noObserver{}
	}
	return s
}

// Now returns the service's current time.
func (s *Service) Now() time.Time { return s.now() }

// --- Policies ---

// SavePolicy validates p and stores it as the policy's next version.
func (s *Service) SavePolicy(ctx context.Context, actor string, p *Policy) (int, error) {
	return s.savePolicy(ctx, actor, p, anyVersion)
}

// anyVersion is the base of a save that replaces whatever version is
// current.
const anyVersion = -1

// SavePolicyOver is SavePolicy for an editor: base is the version the
// edit started from, 0 for a new policy. When another version was saved
// meanwhile (or, for a new policy, one of that name exists), nothing is
// saved and the error is of kind errs.Conflict, so that two people editing
// one policy never lose an edit without knowing.
func (s *Service) SavePolicyOver(ctx context.Context, actor string, p *Policy, base int) (int, error) {
	if base < 0 {
		return 0, errs.E(errs.Invalid, "the version an edit starts from cannot be negative")
	}
	return s.savePolicy(ctx, actor, p, base)
}

func (s *Service) savePolicy(ctx context.Context, actor string, p *Policy, base int) (int, error) {
	if err := p.Validate(); err != nil {
		return 0, errs.Wrap(errs.Invalid, err, "invalid policy")
	}
	body, err := p.encode()
	if err != nil {
		return 0, err
	}
	// The version and its audit event commit together: the audit log
	// names every policy change.
	var v int
	err = s.store.InTx(ctx, func(tx Tx) error {
		v, err = tx.SavePolicy(p.Name, body, actor, base)
		switch {
		case errors.Is(err, ErrStale) && base == 0:
			return errs.E(errs.Conflict, "a policy named %q exists; edit it instead", p.Name)
		case errors.Is(err, ErrStale):
			return errs.E(errs.Conflict, "policy %s changed meanwhile: another version was saved after the version %d you edited; open it again and make your change there", p.Name, base)
		case err != nil:
			return err
		}
		return tx.Audit(Event{Actor: actor, Action: "policy.save", Object: "policy:" + p.Name, Detail: "version " + strconv.Itoa(v)})
	})
	if err != nil {
		return 0, err
	}
	p.Version = v
	return v, nil
}

// Policy returns the current version of the named policy.
func (s *Service) Policy(ctx context.Context, name string) (*Policy, error) {
	body, v, err := s.store.Policy(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.E(errs.NotFound, "no policy named %q", name)
	}
	if err != nil {
		return nil, err
	}
	return decodePolicy(body, v)
}

// PolicyAt returns a given version of the named policy.
func (s *Service) PolicyAt(ctx context.Context, name string, version int) (*Policy, error) {
	return s.policyAt(name, version, func(name string, version int) (string, error) { return s.store.PolicyAt(ctx, name, version) })
}

// policyAtIn is PolicyAt inside a transaction.
func (s *Service) policyAtIn(tx Tx, name string, version int) (*Policy, error) {
	return s.policyAt(name, version, tx.PolicyAt)
}

// policyAt returns a version of a policy from the cache, or read with
// fetch and cached: a version never changes once saved.
func (s *Service) policyAt(name string, version int, fetch func(string, int) (string, error)) (*Policy, error) {
	k := policyKey{name, version}
	if p, ok := s.versions.Load(k); ok {
		return p.(*Policy), nil
	}
	body, err := fetch(name, version)
	if err != nil {
		return nil, err
	}
	p, err := decodePolicy(body, version)
	if err != nil {
		return nil, err
	}
	s.versions.Store(k, p)
	return p, nil
}

// policyIn is Policy inside a transaction.
func (s *Service) policyIn(tx Tx, name string) (*Policy, error) {
	body, v, err := tx.Policy(name)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.E(errs.NotFound, "no policy named %q", name)
	}
	if err != nil {
		return nil, err
	}
	return decodePolicy(body, v)
}

// PolicyNames lists the policies.
func (s *Service) PolicyNames(ctx context.Context) ([]string, error) { return s.store.PolicyNames(ctx) }

// EnsureDefaultPolicy creates the default policy when no policy exists.
func (s *Service) EnsureDefaultPolicy(ctx context.Context, actor string) error {
	names, err := s.store.PolicyNames(ctx)
	if err != nil || len(names) > 0 {
		return err
	}
	_, err = s.SavePolicy(ctx, actor, DefaultPolicy())
	return err
}

// --- Invitations ---

// Invitee is one person to invite.
type Invitee struct {
	Email     string
	GivenName string
	Surname   string
	Fields    map[string]string
}

// InviteError says why one invitation was refused.
type InviteError struct {
	Reason string // "invalid mailbox", "domain not allowed", "already invited or active", "missing required field", "invalid name"
	Detail string
}

func (e *InviteError) Error() string {
	if e.Detail == "" {
		return "enrol: " + e.Reason
	}
	return "enrol: " + e.Reason + ": " + e.Detail
}

// Kind reports an invitation refusal as invalid input, or a conflict.
func (e *InviteError) Kind() errs.Kind {
	if e.Reason == "already invited or active" {
		return errs.Conflict
	}
	return errs.Invalid
}

// checkInvitee validates one invitee against p and returns the mailbox.
func checkInvitee(p *Policy, inv *Invitee) (mailbox.Address, error) {
	addr, err := mailbox.Parse(inv.Email)
	if err != nil {
		return addr, &InviteError{Reason: "invalid mailbox", Detail: err.Error()}
	}
	if !p.AllowsDomain(addr.Domain) {
		return addr, &InviteError{Reason: "domain not allowed", Detail: addr.Domain}
	}
	var err2 error
	if inv.GivenName, err2 = cleanText(inv.GivenName, 64); err2 != nil {
		return addr, &InviteError{Reason: "invalid name", Detail: "given name " + err2.Error()}
	}
	if inv.Surname, err2 = cleanText(inv.Surname, 64); err2 != nil {
		return addr, &InviteError{Reason: "invalid name", Detail: "surname " + err2.Error()}
	}
	return addr, nil
}

// Invite invites one person under the named policy: it stores the
// enrolment and its link, and enqueues the invitation email, in one
// transaction.
func (s *Service) Invite(ctx context.Context, actor, policy string, inv Invitee) (*Enrolment, error) {
	p, err := s.Policy(ctx, policy)
	if err != nil {
		return nil, err
	}
	if !p.Channels.Invitation {
		return nil, errs.E(errs.Forbidden, "policy %s does not allow invitations", p.Name)
	}
	var e *Enrolment
	err = s.store.InTx(ctx, func(tx Tx) error {
		var err error
		e, err = s.invite(tx, actor, p, inv, 0)
		return err
	})
	if err == nil {
		s.obs.Invited()
	}
	return e, err
}

// invite does the work of Invite inside tx.
func (s *Service) invite(tx Tx, actor string, p *Policy, inv Invitee, batchID int64) (*Enrolment, error) {
	e, err := s.newInvitation(actor, p, inv, batchID)
	if err != nil {
		return nil, err
	}
	if err := s.insertEnrolment(tx, e); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return nil, &InviteError{Reason: "already invited or active", Detail: e.Mailbox}
		}
		return nil, err
	}
	if err := s.sendLink(tx, e, p, PurposeInvitation, "invitation", e.ExpiresAt); err != nil {
		return nil, err
	}
	return e, tx.Audit(inviteEvent(actor, p, e))
}

// insertEnrolment stores e. When a live enrolment for the same person and
// policy blocks it, but that one is an invitation whose link lapsed unused,
// the lapsed one is marked expired and e takes its place: otherwise anyone
// who once typed someone's address into an open form would lock them out.
func (s *Service) insertEnrolment(tx Tx, e *Enrolment) error {
	err := tx.InsertEnrolment(e)
	if !errors.Is(err, ErrDuplicate) {
		return err
	}
	if ok, xerr := s.expireLapsed(tx, e.Policy, e.MailboxKey); xerr != nil || !ok {
		return errors.Join(err, xerr)
	}
	return tx.InsertEnrolment(e)
}

// expireLapsed marks the live enrolment for policy and key expired if it
// is an invitation past its expiry, and reports whether it did.
func (s *Service) expireLapsed(tx Tx, policy, key string) (bool, error) {
	live, err := tx.LiveEnrolment(policy, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := s.now()
	if live.State != Invited || now.Before(live.ExpiresAt) {
		return false, nil
	}
	return true, s.expireInvitation(tx, live, now)
}

// newInvitation checks inv against p and returns the enrolment to store.
func (s *Service) newInvitation(actor string, p *Policy, inv Invitee, batchID int64) (*Enrolment, error) {
	addr, err := checkInvitee(p, &inv)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return &Enrolment{
		Policy: p.Name, PolicyVersion: p.Version, State: Invited, Channel: ViaInvitation,
		Mailbox: addr.String(), MailboxKey: addr.Key(), GivenName: inv.GivenName, Surname: inv.Surname,
		Fields: inv.Fields, BatchID: batchID, InvitedBy: actor, CreatedAt: now, UpdatedAt: now,
		ExpiresAt: now.Add(time.Duration(p.InvitationLifetime)),
	}, nil
}

func inviteEvent(actor string, p *Policy, e *Enrolment) Event {
	return Event{Actor: actor, Action: "enrolment.invite", Object: e.object(), Detail: "policy " + p.Name + " v" + strconv.Itoa(p.Version) + ", " + e.Mailbox}
}

// sendLink makes a link for e and enqueues the email that carries it.
func (s *Service) sendLink(tx Tx, e *Enrolment, p *Policy, purpose Purpose, template string, expires time.Time) error {
	l, m := s.linkMail(e, p, purpose, template, expires)
	if err := tx.InsertLink(l); err != nil {
		return err
	}
	return tx.Enqueue(m)
}

// linkMail returns a new link for e and the email that carries it.
func (s *Service) linkMail(e *Enrolment, p *Policy, purpose Purpose, template string, expires time.Time) (Link, Mail) {
	token, hash := newToken()
	path := map[Purpose]string{PurposeInvitation: "/e/", PurposeVerification: "/e/", PurposeActivation: "/a/"}[purpose]
	return Link{Hash: hash, Purpose: purpose, EnrolmentID: e.ID, ExpiresAt: expires}, Mail{
		Template: template, TemplateSet: p.Templates, To: e.Mailbox, EnrolmentID: e.ID, MessageID: s.messageID(),
		Data: map[string]string{
			"Link": s.public + path + token, "Expires": expires.UTC().Format("2 January 2006 15:04 MST"),
			"GivenName": e.GivenName, "Surname": e.Surname, "Mailbox": e.Mailbox, "Policy": p.Name,
		},
	}
}

func (e *Enrolment) object() string { return "enrolment:" + strconv.FormatInt(e.ID, 10) }

// enqueue adds m to the outbox with a fresh Message-ID.
func (s *Service) enqueue(tx Tx, m Mail) error {
	m.MessageID = s.messageID()
	return tx.Enqueue(m)
}

// messageID returns a new Message-ID, fixed when the email is enqueued so
// that a retried delivery carries the same one.
func (s *Service) messageID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "<" + hex.EncodeToString(b) + "@" + s.host + ">"
}

// Resend sends a new link for an enrolment waiting on its user: a new
// invitation while invited (or expired unused), a new activation link while
// approved. The previous link stops working.
func (s *Service) Resend(ctx context.Context, actor string, id int64) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		e, p, err := s.loadIn(tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		switch e.State {
		case Invited, Expired:
			if e.State == Expired && !e.SubmittedAt.IsZero() {
				return errs.E(errs.Conflict, "enrolment %d expired after submission; invite again", id)
			}
			if err := tx.RetireLinks(e.ID, PurposeInvitation, now); err != nil {
				return err
			}
			from, rev := e.State, e.Rev
			e.State, e.UpdatedAt, e.ExpiresAt = Invited, now, now.Add(time.Duration(p.InvitationLifetime))
			if err := tx.Transition(e.ID, from, rev, e); err != nil {
				return s.stale(err, id)
			}
			if err := s.sendLink(tx, e, p, PurposeInvitation, "invitation", e.ExpiresAt); err != nil {
				return err
			}
		case Approved:
			if err := tx.RetireLinks(e.ID, PurposeActivation, now); err != nil {
				return err
			}
			if err := s.sendLink(tx, e, p, PurposeActivation, "approved", now.Add(time.Duration(p.ActivationLifetime))); err != nil {
				return err
			}
		default:
			return errs.E(errs.Conflict, "enrolment %d is %s: there is no link to resend", id, e.State)
		}
		return tx.Audit(Event{Actor: actor, Action: "enrolment.resend", Object: e.object(), Detail: string(e.State)})
	})
}

// Cancel withdraws an enrolment that has not been issued.
func (s *Service) Cancel(ctx context.Context, actor string, id int64, reason string) error {
	reason, err := cleanText(reason, 500)
	if err != nil {
		return errs.E(errs.Invalid, "reason %v", err)
	}
	return s.store.InTx(ctx, func(tx Tx) error {
		e, _, err := s.loadIn(tx, id)
		if err != nil {
			return err
		}
		if e.State != Invited && e.State != Submitted && e.State != Approved && e.State != Expired {
			return errs.E(errs.Conflict, "enrolment %d is %s and cannot be cancelled", id, e.State)
		}
		from, rev := e.State, e.Rev
		e.State, e.Reason, e.UpdatedAt = Cancelled, reason, s.now()
		if err := tx.Transition(e.ID, from, rev, e); err != nil {
			return s.stale(err, id)
		}
		for _, p := range []Purpose{PurposeInvitation, PurposeActivation} {
			if err := tx.RetireLinks(e.ID, p, e.UpdatedAt); err != nil {
				return err
			}
		}
		return tx.Audit(Event{Actor: actor, Action: "enrolment.cancel", Object: e.object(), Detail: reason})
	})
}

// load reads an enrolment and the policy version it runs under.
func (s *Service) load(ctx context.Context, id int64) (*Enrolment, *Policy, error) {
	return s.loadFrom(id, func() (*Enrolment, error) { return s.store.Enrolment(ctx, id) },
		func(name string, version int) (string, error) { return s.store.PolicyAt(ctx, name, version) })
}

// loadIn is load inside a transaction: every transition reads what it
// decides on through its own transaction.
func (s *Service) loadIn(tx Tx, id int64) (*Enrolment, *Policy, error) {
	return s.loadFrom(id, func() (*Enrolment, error) { return tx.Enrolment(id) }, tx.PolicyAt)
}

func (s *Service) loadFrom(id int64, enrolment func() (*Enrolment, error), policyAt func(string, int) (string, error)) (*Enrolment, *Policy, error) {
	e, err := enrolment()
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errs.E(errs.NotFound, "no enrolment %d", id)
	}
	if err != nil {
		return nil, nil, err
	}
	p, err := s.policyAt(e.Policy, e.PolicyVersion, policyAt)
	if err != nil {
		return nil, nil, err
	}
	return e, p, nil
}

func (s *Service) stale(err error, id int64) error {
	if errors.Is(err, ErrStale) {
		return errs.Wrap(errs.Conflict, err, fmt.Sprintf("enrolment %d changed meanwhile; reload and try again", id))
	}
	return err
}

// Enrolment returns one enrolment.
func (s *Service) Enrolment(ctx context.Context, id int64) (*Enrolment, error) {
	e, _, err := s.load(ctx, id)
	return e, err
}

// Enrolments lists enrolments, newest first.
func (s *Service) Enrolments(ctx context.Context, f Filter) ([]*Enrolment, error) {
	// No limit means a page of 100; more than 1,000 means 1,000, not a
	// silent 100.
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	return s.store.Enrolments(ctx, f)
}

// --- The user's side: the form ---

// ErrLinkInvalid is what a user sees for any link that does not work:
// unknown, expired, used, or for another purpose. One message for all, so
// the page tells an attacker nothing.
var ErrLinkInvalid = errs.E(errs.NotFound, "this link is not valid: it may have expired or been used already; ask for a new one")

// OpenLink returns the enrolment and policy behind a link without changing
// anything (for GET pages).
func (s *Service) OpenLink(ctx context.Context, token string, purpose Purpose) (*Enrolment, *Policy, error) {
	if !validTokenShape(token) {
		return nil, nil, ErrLinkInvalid
	}
	l, err := s.store.Link(ctx, HashToken(token))
	if err != nil || l.Purpose != purpose || !l.UsedAt.IsZero() || !s.now().Before(l.ExpiresAt) {
		return nil, nil, ErrLinkInvalid
	}
	e, p, err := s.load(ctx, l.EnrolmentID)
	if err != nil {
		return nil, nil, ErrLinkInvalid
	}
	want := map[Purpose]State{PurposeInvitation: Invited, PurposeActivation: Approved}[purpose]
	if e.State != want {
		return nil, nil, ErrLinkInvalid
	}
	return e, p, nil
}

// Application is what the user enters on the enrolment form.
type Application struct {
	GivenName    string
	Surname      string
	Fields       map[string]string
	AcceptTerms  bool
	TermsVersion string // the version shown on the form
}

// FormError lists problems with the form, by field name ("given_name",
// a custom field, or "terms").
type FormError struct{ Problems map[string]string }

func (e *FormError) Error() string {
	var parts []string
	for f, m := range e.Problems {
		parts = append(parts, f+": "+m)
	}
	return "enrol: the form has problems: " + strings.Join(parts, "; ")
}

// Kind reports form problems as invalid input.
func (e *FormError) Kind() errs.Kind { return errs.Invalid }

// checkApplication validates a against p, with e's invitation values for
// read-only fields, and writes the accepted values into e.
func checkApplication(p *Policy, e *Enrolment, a Application) error {
	probs := map[string]string{}
	if !a.AcceptTerms {
		probs["terms"] = "you must accept the terms to get a certificate"
	} else if a.TermsVersion != p.Terms.Version {
		probs["terms"] = "the terms have changed; read them again and accept"
	}
	fields := map[string]string{}
	for _, f := range p.Fields {
		var v string
		switch f.Name {
		case FieldGivenName:
			v = a.GivenName
			if !f.Editable {
				v = e.GivenName
			}
		case FieldSurname:
			v = a.Surname
			if !f.Editable {
				v = e.Surname
			}
		default:
			v = a.Fields[f.Name]
			if !f.Editable {
				v = e.Fields[f.Name]
			}
		}
		max := f.MaxLength
		if max == 0 {
			max = 256
		}
		if f.Name == FieldGivenName || f.Name == FieldSurname {
			max = min(max, 64)
		}
		v, err := cleanText(v, max)
		switch {
		case err != nil:
			probs[f.Name] = err.Error()
			continue
		case v == "" && f.Required:
			probs[f.Name] = "is required"
			continue
		case v != "" && f.Pattern != "" && !matchWhole(f.Pattern, v):
			probs[f.Name] = "is not in the expected format"
			if f.Help != "" {
				probs[f.Name] += ": " + f.Help
			}
			continue
		}
		switch f.Name {
		case FieldGivenName:
			e.GivenName = v
		case FieldSurname:
			e.Surname = v
		default:
			if v != "" {
				fields[f.Name] = v
			}
		}
	}
	if len(probs) > 0 {
		return &FormError{Problems: probs}
	}
	e.Fields = fields
	e.TermsVersion = p.Terms.Version
	return nil
}

// Submit takes the form behind an invitation link. The link is used up in
// the same transaction that moves the enrolment to submitted (or straight
// on to approved when the policy approves automatically), so a replayed
// form post finds the link spent.
func (s *Service) Submit(ctx context.Context, token string, a Application) (*Enrolment, error) {
	if !validTokenShape(token) {
		return nil, ErrLinkInvalid
	}
	var out *Enrolment
	err := s.store.InTx(ctx, func(tx Tx) error {
		now := s.now()
		l, err := tx.UseLink(HashToken(token), PurposeInvitation, now)
		if err != nil {
			return ErrLinkInvalid
		}
		e, p, err := s.loadIn(tx, l.EnrolmentID)
		if err != nil {
			return err
		}
		if e.State != Invited {
			return ErrLinkInvalid
		}
		if err := checkApplication(p, e, a); err != nil {
			return err
		}
		from, rev := e.State, e.Rev
		e.State, e.SubmittedAt, e.UpdatedAt = Submitted, now, now
		if err := tx.Transition(e.ID, from, rev, e); err != nil {
			return s.stale(err, e.ID)
		}
		e.Rev++
		if err := tx.Audit(Event{Actor: "user:" + e.Mailbox, Action: "enrolment.submit", Object: e.object(), Detail: "terms v" + e.TermsVersion}); err != nil {
			return err
		}
		out = e
		return s.afterSubmit(tx, e, p)
	})
	s.observeSubmit(out, err)
	return out, err
}

// afterSubmit approves automatically when the policy says so, or tells
// the approvers, within the submitting transaction.
func (s *Service) afterSubmit(tx Tx, e *Enrolment, p *Policy) error {
	addr, err := mailbox.Parse(e.Mailbox)
	if err != nil {
		return err
	}
	if p.autoApproves(addr, e.Channel) {
		return s.approve(tx, e, p, "system", "automatic approval ("+string(p.Approval.Mode)+")")
	}
	if e.Channel == ViaRenewal && p.Renewal.Approval == RenewAutomatic {
		return s.approve(tx, e, p, "system", "automatic approval of a renewal")
	}
	for _, n := range p.Notify {
		err := s.enqueue(tx, Mail{Template: "application", TemplateSet: p.Templates, To: n, EnrolmentID: e.ID, Data: map[string]string{
			"Mailbox": e.Mailbox, "GivenName": e.GivenName, "Surname": e.Surname, "Policy": p.Name,
			"ID": strconv.FormatInt(e.ID, 10), "Review": s.public + "/console/enrolments/" + strconv.FormatInt(e.ID, 10),
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

// approve moves e from submitted to approved and sends the activation link.
func (s *Service) approve(tx Tx, e *Enrolment, p *Policy, actor, detail string) error {
	now := s.now()
	from, rev := e.State, e.Rev
	e.State, e.DecidedAt, e.UpdatedAt = Approved, now, now
	if err := tx.Transition(e.ID, from, rev, e); err != nil {
		return s.stale(err, e.ID)
	}
	e.Rev++
	if err := s.sendLink(tx, e, p, PurposeActivation, "approved", now.Add(time.Duration(p.ActivationLifetime))); err != nil {
		return err
	}
	return tx.Audit(Event{Actor: actor, Action: "enrolment.approve", Object: e.object(), Detail: detail})
}

// --- Open self-enrolment and referral ---

// StartOpen begins an open self-enrolment: if the policy allows it and the
// domain is allowed, a verification link goes to the mailbox. The result is
// the same whether or not the mailbox was already enrolled, so the page
// reveals nothing about who has a certificate.
func (s *Service) StartOpen(ctx context.Context, policy, email string) error {
	p, err := s.Policy(ctx, policy)
	if err != nil || !p.Channels.Open {
		return errs.E(errs.NotFound, "self-enrolment is not available here")
	}
	inv := Invitee{Email: email}
	addr, err := checkInvitee(p, &inv)
	if err != nil {
		return err
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		now := s.now()
		e := &Enrolment{Policy: p.Name, PolicyVersion: p.Version, State: Invited, Channel: ViaOpen,
			Mailbox: addr.String(), MailboxKey: addr.Key(), CreatedAt: now, UpdatedAt: now,
			ExpiresAt: now.Add(min(time.Duration(p.InvitationLifetime), 24*time.Hour))}
		if err := s.insertEnrolment(tx, e); err != nil {
			return err
		}
		if err := s.sendLink(tx, e, p, PurposeInvitation, "verification", e.ExpiresAt); err != nil {
			return err
		}
		return tx.Audit(Event{Actor: "user:" + e.Mailbox, Action: "enrolment.open", Object: e.object(), Detail: "policy " + p.Name})
	})
	if errors.Is(err, ErrDuplicate) {
		return nil
	}
	return err
}

// OpenReferral checks a referral token for the GET page (nothing changes).
func (s *Service) OpenReferral(ctx context.Context, token string) (*Referral, *Policy, error) {
	r, p, err := parseReferral(token, func(n string) (*Policy, error) { return s.Policy(ctx, n) }, s.now())
	if err != nil {
		return nil, nil, errs.Wrap(errs.NotFound, err, "this referral link is invalid or has expired; go back to the site that sent you")
	}
	return r, p, nil
}

// SubmitReferral creates and submits an enrolment from a referral and the
// form, in one transaction that also spends the referral's ID.
func (s *Service) SubmitReferral(ctx context.Context, token string, a Application) (*Enrolment, error) {
	r, p, err := s.OpenReferral(ctx, token)
	if err != nil {
		return nil, err
	}
	inv := Invitee{Email: r.Email, GivenName: r.GivenName, Surname: r.Surname}
	addr, err := checkInvitee(p, &inv)
	if err != nil {
		return nil, err
	}
	var out *Enrolment
	err = s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.UseReferral(r.ID, time.Unix(r.Expires, 0)); err != nil {
			if errors.Is(err, ErrDuplicate) {
				return errs.E(errs.Conflict, "this referral link was used already")
			}
			return err
		}
		now := s.now()
		e := &Enrolment{Policy: p.Name, PolicyVersion: p.Version, State: Submitted, Channel: ViaReferral,
			Mailbox: addr.String(), MailboxKey: addr.Key(), GivenName: inv.GivenName, Surname: inv.Surname,
			CreatedAt: now, UpdatedAt: now, SubmittedAt: now}
		if err := checkApplication(p, e, a); err != nil {
			return err
		}
		if err := s.insertEnrolment(tx, e); err != nil {
			if errors.Is(err, ErrDuplicate) {
				return &InviteError{Reason: "already invited or active", Detail: addr.String()}
			}
			return err
		}
		if err := tx.Audit(Event{Actor: "user:" + e.Mailbox, Action: "enrolment.submit", Object: e.object(), Detail: "referral " + r.ID}); err != nil {
			return err
		}
		out = e
		return s.afterSubmit(tx, e, p)
	})
	s.observeSubmit(out, err)
	return out, err
}

// --- Approval ---

// Approve records actor's approval of a submitted application. When the
// policy's number of distinct approvers is reached, the enrolment moves to
// approved and the activation link goes out, in the same transaction.
func (s *Service) Approve(ctx context.Context, actor string, id int64) (*Enrolment, error) {
	var out *Enrolment
	err := s.store.InTx(ctx, func(tx Tx) error {
		e, p, err := s.loadIn(tx, id)
		if err != nil {
			return err
		}
		if e.State != Submitted {
			return errs.E(errs.Conflict, "enrolment %d is %s, not waiting for approval", id, e.State)
		}
		if p.Approval.SeparateDuties && actor == e.InvitedBy {
			return errs.E(errs.Forbidden, "the policy requires separation of duties: you invited this person, so another approver must decide")
		}
		if approvesOwn(actor, e.Mailbox) {
			return errs.E(errs.Forbidden, "this is your own application: another approver must decide")
		}
		n, err := tx.AddApprover(id, actor, s.now())
		if err != nil {
			return err
		}
		out = e
		if n < p.Approval.Required {
			return tx.Audit(Event{Actor: actor, Action: "enrolment.approval", Object: e.object(), Detail: fmt.Sprintf("%d of %d approvals", n, p.Approval.Required)})
		}
		return s.approve(tx, e, p, actor, fmt.Sprintf("%d of %d approvals", n, p.Approval.Required))
	})
	if err == nil && out.State == Approved {
		s.obs.Approved()
	}
	return out, err
}

// approvesOwn reports whether actor, a console account ("console:" and
// its email address), is the applicant of mailbox: nobody approves their
// own certificate, whatever the policy says.
func approvesOwn(actor, mailbox string) bool {
	email, ok := strings.CutPrefix(actor, "console:")
	return ok && strings.EqualFold(email, mailbox)
}

// Reject refuses a submitted application with a reason that is sent to
// the applicant.
func (s *Service) Reject(ctx context.Context, actor string, id int64, reason string) error {
	reason, err := cleanText(reason, 500)
	if err != nil || reason == "" {
		return errs.E(errs.Invalid, "a rejection needs a reason (plain text, at most 500 characters)")
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		e, p, err := s.loadIn(tx, id)
		if err != nil {
			return err
		}
		if e.State != Submitted {
			return errs.E(errs.Conflict, "enrolment %d is %s, not waiting for approval", id, e.State)
		}
		from, rev := e.State, e.Rev
		now := s.now()
		e.State, e.Reason, e.DecidedAt, e.UpdatedAt = Rejected, reason, now, now
		if err := tx.Transition(id, from, rev, e); err != nil {
			return s.stale(err, id)
		}
		if err := s.enqueue(tx, Mail{Template: "rejected", TemplateSet: p.Templates, To: e.Mailbox, EnrolmentID: e.ID,
			Data: map[string]string{"Mailbox": e.Mailbox, "GivenName": e.GivenName, "Reason": reason, "Policy": p.Name}}); err != nil {
			return err
		}
		return tx.Audit(Event{Actor: actor, Action: "enrolment.reject", Object: e.object(), Detail: reason})
	})
	if err == nil {
		s.obs.Rejected()
	}
	return err
}

// --- Activation ---

// Activation is what the user receives on activation.
type Activation struct {
	Enrolment *Enrolment
	Cert      *ca.Certificate
	P12       []byte // server-generated key only
	Password  string // the PKCS#12 password: show once, never store or log
	Filename  string
}

// Activate redeems an activation link: the link proves control of the
// mailbox (S/MIME BR 3.2.2.2), the certificate is issued for the policy's
// profile, with a server-generated key (delivered as PKCS#12) or the
// public key of csr. Only one Activate of a link can win; a lost race or a
// second click gets ErrLinkInvalid and issues nothing.
func (s *Service) Activate(ctx context.Context, token string, mode KeyMode, csr []byte) (*Activation, error) {
	e, p, err := s.OpenLink(ctx, token, PurposeActivation)
	if err != nil {
		return nil, err
	}
	if !p.AllowsKeyMode(mode) {
		return nil, errs.E(errs.Invalid, "this policy does not offer that way of getting a key")
	}
	// Check what the user sent before spending the link.
	var pub any
	var key any
	if mode == KeyCSR {
		req, err := ca.ParseCSR(csr)
		if err != nil {
			return nil, err
		}
		pub = req.PublicKey
	}
	addr, err := mailbox.Parse(e.Mailbox)
	if err != nil {
		return nil, err
	}

	// 1. Spend the link: from here on this request owns the activation.
	hash := HashToken(token)
	err = s.store.InTx(ctx, func(tx Tx) error {
		_, err := tx.UseLink(hash, PurposeActivation, s.now())
		return err
	})
	if err != nil {
		return nil, ErrLinkInvalid
	}

	// 2. Issue. A refusal of the request (a reused key, say) gives the
	// link back so the user can try again with another key.
	if mode == KeyServer {
		k, err := keys.Generate(rand.Reader, s.keyType)
		if err != nil {
			return nil, err
		}
		key, pub = k, k.Public()
	}
	req := ca.Request{Profile: p.Profile, PublicKey: pub, Mailbox: addr, Validity: time.Duration(p.ValidityDays) * 24 * time.Hour,
		// One approval, one certificate: the store refuses a second live
		// certificate for this enrolment, even if a resent link races an
		// activation still in progress.
		Once: e.object()}
	if strings.HasPrefix(p.Profile, "sponsor") {
		req.GivenName, req.Surname = e.GivenName, e.Surname
	}
	cert, err := s.issuer.Issue(ctx, req)
	var rerr *ca.RequestError
	if errors.As(err, &rerr) && rerr.Reason == ca.AlreadyIssued {
		// A reservation its process left unsigned (it stopped in between)
		// must not block this enrolment for ever.
		if abandoned, aerr := s.store.AbandonReservation(ctx, req.Once, s.now().Add(-StaleReservation)); aerr != nil {
			return nil, aerr
		} else if abandoned {
			cert, err = s.issuer.Issue(ctx, req)
		}
	}
	if err != nil {
		if errors.As(err, &rerr) && rerr.Reason == ca.AlreadyIssued {
			return nil, s.recoverIssued(ctx, e, p, mode)
		}
		if errors.As(err, &rerr) {
			// The user's key was refused (reused, weak): let them try again.
			if lerr := s.store.InTx(ctx, func(tx Tx) error { return tx.ReleaseLink(hash) }); lerr != nil {
				return nil, errors.Join(err, lerr)
			}
		}
		return nil, err
	}

	// 3. Record the issuance, the mailbox validation and the confirmation.
	out := &Activation{Enrolment: e, Cert: cert}
	err = s.recordIssued(ctx, e, p, cert.Cert, mode)
	if err != nil {
		return nil, fmt.Errorf("enrol: certificate %s issued but not recorded: %w", ca.SerialHex(cert.Cert.SerialNumber), err)
	}
	if mode == KeyServer {
		format, _ := p12.ParseFormat(p.P12Format)
		pw, err := p12.NewPassword()
		if err != nil {
			return nil, err
		}
		out.P12, err = p12.Encode(rand.Reader, key, cert.Cert, cert.Chain, e.Mailbox, pw, format)
		if err != nil {
			return nil, err
		}
		out.Password = pw
		out.Filename = safeFilename(e.Mailbox) + ".p12"
	}
	return out, nil
}

// recordIssued moves e to issued with cert, records the mailbox
// validation, and enqueues the confirmation with a revocation link, in one
// transaction.
func (s *Service) recordIssued(ctx context.Context, e *Enrolment, p *Policy, cert *x509.Certificate, mode KeyMode) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		now := s.now()
		from, rev := e.State, e.Rev
		e.State, e.Serial, e.IssuedAt, e.UpdatedAt = Issued, ca.SerialHex(cert.SerialNumber), now, now
		if err := tx.Transition(e.ID, from, rev, e); err != nil {
			return s.stale(err, e.ID)
		}
		if err := tx.RecordValidation(Validation{EnrolmentID: e.ID, Mailbox: e.Mailbox, Method: "activation-link", BRVersion: BRVersion, At: now}); err != nil {
			return err
		}
		revokeToken, revokeHash := newToken()
		if err := tx.InsertRevocationLink(RevocationLink{Hash: revokeHash, Serial: e.Serial, Mailbox: e.Mailbox, ExpiresAt: cert.NotAfter}); err != nil {
			return err
		}
		if err := s.enqueue(tx, Mail{Template: "issued", TemplateSet: p.Templates, To: e.Mailbox, EnrolmentID: e.ID, Data: map[string]string{
			"Mailbox": e.Mailbox, "GivenName": e.GivenName, "Serial": e.Serial,
			"NotAfter":       cert.NotAfter.UTC().Format("2 January 2006"),
			"CertificatePEM": string(pemCert(cert.Raw)),
			"RevocationLink": s.public + "/revoke/" + revokeToken,
		}}); err != nil {
			return err
		}
		if err := tx.Audit(Event{Actor: "user:" + e.Mailbox, Action: "certificate.issue", Object: e.object(), Detail: "serial " + e.Serial + ", " + string(mode) + " key, profile " + p.Profile}); err != nil {
			return err
		}
		// A renewal may supersede the certificate it renews (Policy.RevokeOnRenewal).
		if e.RenewalOf != "" && p.RevokeOnRenewal {
			if _, err := s.revokeIn(tx, "system", e.RenewalOf, ca.ReasonSuperseded); err != nil && errs.KindOf(err) != errs.NotFound {
				return err
			}
		}
		return nil
	})
}

// ErrIssuedEarlier is returned by an activation that finds the certificate
// of its enrolment already issued, by an earlier activation that stopped
// before recording it (a crash, a lost connection).
var ErrIssuedEarlier = errs.E(errs.Conflict, "a certificate was already issued for this application and has been sent to your mailbox; if you do not hold its key, revoke it with the link in that email and ask for a new one")

// StaleReservation is how old a serial reservation must be for an
// activation to take it for abandoned: issuing takes milliseconds, so a
// reservation this old was left by a process that stopped before it
// signed and stored the certificate.
const StaleReservation = 2 * time.Minute

// recoverIssued completes the record of an enrolment whose certificate
// was issued by an earlier activation that did not record it: the state,
// the validation and the confirmation email follow from the stored
// certificate, so nothing is left half done.
func (s *Service) recoverIssued(ctx context.Context, e *Enrolment, p *Policy, mode KeyMode) error {
	cert, err := s.store.CertificateFor(ctx, e.object())
	if errors.Is(err, ErrNotFound) {
		// Reserved but not yet signed: another activation is under way.
		return errs.E(errs.Conflict, "this application is being activated already; wait a moment and check your mailbox")
	}
	if err != nil {
		return fmt.Errorf("enrol: enrolment %d has a certificate that cannot be read: %w", e.ID, err)
	}
	if err := s.recordIssued(ctx, e, p, cert, mode); err != nil && errs.KindOf(err) != errs.Conflict {
		return err
	}
	return ErrIssuedEarlier
}

// cleanText trims s and refuses control characters (CR and LF in a name
// are header-injection attempts) and text longer than max characters.
func cleanText(s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == unicode.ReplacementChar {
			return "", errors.New("contains a control character")
		}
		n++
	}
	if n > max {
		return "", fmt.Errorf("is longer than %d characters", max)
	}
	return s, nil
}

func safeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_' || r == '@') {
			return r
		}
		return '_'
	}, s)
}
