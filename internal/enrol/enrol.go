// Package enrol is the registration authority: policies, invitations, applications, approvals and activation.
package enrol

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/mailca/mailca/internal/ca"
)

// State is where an enrolment stands (see DESIGN.md, "Enrolment state machine").
type State string

const (
	Invited   State = "invited"   // a link went to the mailbox; the form is not yet submitted
	Submitted State = "submitted" // the form is in; waiting for approval
	Approved  State = "approved"  // approved; the activation link went to the mailbox
	Issued    State = "issued"    // the certificate was issued
	Expired   State = "expired"   // the invitation lapsed unused, or the certificate ran out
	Cancelled State = "cancelled" // withdrawn by an administrator
	Rejected  State = "rejected"  // refused by an approver
	Revoked   State = "revoked"   // the certificate was revoked
)

// States lists every state in the order of the process.
var States = []State{Invited, Submitted, Approved, Issued, Expired, Cancelled, Rejected, Revoked}

// Live reports whether an enrolment in state s blocks a new one for the
// same mailbox and policy.
func (s State) Live() bool { return s == Invited || s == Submitted || s == Approved || s == Issued }

// Channel is how an enrolment started.
type Channel string

const (
	ViaInvitation Channel = "invitation"
	ViaReferral   Channel = "referral"
	ViaOpen       Channel = "open"
	ViaRenewal    Channel = "renewal" // started by the expiry reminder of an issued certificate
)

// Enrolment is one person's way from invitation to certificate.
type Enrolment struct {
	ID            int64
	Policy        string
	PolicyVersion int
	State         State
	Rev           int // row revision, bumped by every transition
	Channel       Channel
	Mailbox       string // mailbox.Address.String()
	MailboxKey    string // mailbox.Address.Key(), for uniqueness
	GivenName     string
	Surname       string
	Fields        map[string]string // custom form fields
	BatchID       int64             // 0 when not from a CSV batch
	InvitedBy     string            // actor who invited; "" for referral and open
	TermsVersion  string            // the terms accepted on submission
	Serial        string            // the certificate's serial once issued
	Reason        string            // why it was rejected or cancelled
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SubmittedAt   time.Time
	DecidedAt     time.Time // approved or rejected
	IssuedAt      time.Time
	ExpiresAt     time.Time // of the invitation, while invited
	Approvers     []string  // distinct approvers so far (N of M)
	RenewalOf     string    // serial of the certificate this enrolment renews; "" when not a renewal
}

// Purpose is what a link may be used for; a link serves one purpose only.
type Purpose string

const (
	PurposeInvitation   Purpose = "invitation"   // open the enrolment form
	PurposeVerification Purpose = "verification" // open self-enrolment: prove the mailbox, then the form
	PurposeActivation   Purpose = "activation"   // collect the certificate; validates the mailbox
)

// Link is a stored link: only the SHA-256 of its token is kept.
type Link struct {
	Hash        []byte
	Purpose     Purpose
	EnrolmentID int64
	ExpiresAt   time.Time
	UsedAt      time.Time
}

// RevocationLink lets a subscriber revoke their own certificate; it is
// sent with the certificate and works until the certificate expires. Only
// the SHA-256 of its token is stored.
type RevocationLink struct {
	Hash      []byte
	Serial    string
	Mailbox   string
	ExpiresAt time.Time
}

// Mail is an email to enqueue in the outbox within a transition.
type Mail struct {
	Template    string            // "invitation", "verification", "application", "approved", "rejected", "issued"
	TemplateSet string            // the policy's template set
	To          string            // one mailbox
	EnrolmentID int64             // 0 when not about an enrolment
	Data        map[string]string // template values; may contain link tokens
	MessageID   string            // "<...@host>", fixed when enqueued so a retry reuses it
}

// Event is an audit event written in the same transaction as the change it records.
type Event struct {
	Actor  string // "admin:alice@example.com", "user:bob@example.com", "system", "cli"
	Action string // "enrolment.invite", "enrolment.approve", ...
	Object string // "enrolment:42"
	Detail string // no token, password or key, ever
}

// Validation records how and when a mailbox was validated (S/MIME BR 3.2.2.2).
type Validation struct {
	EnrolmentID int64
	Mailbox     string
	Method      string // "activation-link": a random value sent to the mailbox and returned
	BRVersion   string
	At          time.Time
}

// Filter selects enrolments. After is a keyset cursor: only IDs below it.
type Filter struct {
	State   State
	Policy  string
	Mailbox string // prefix of the mailbox
	BatchID int64
	Before  int64 // return IDs < Before; 0 means from the newest
	Limit   int
}

// Batch is one CSV import.
type Batch struct {
	ID        int64
	Policy    string
	Filename  string
	Actor     string
	State     string // "importing", "done", "failed"
	Rows      int
	Invited   int
	Refused   int
	CreatedAt time.Time
	DoneAt    time.Time
	UpdatedAt time.Time // when the import last committed rows
	Error     string    // why the import stopped, for its page; set with state "failed"
}

// BatchStall is how long an import may commit nothing before it is taken
// for stopped: a chunk of rows takes milliseconds, so silence this long
// means the process importing it died.
const BatchStall = 2 * time.Minute

// Stalled reports whether b is still marked importing but has committed
// nothing for BatchStall: its process stopped (a restart, a crash). The
// rows reported so far are invited; uploading the file again invites the
// rest, and nobody twice.
func (b *Batch) Stalled(now time.Time) bool {
	last := b.UpdatedAt
	if last.Before(b.CreatedAt) {
		last = b.CreatedAt
	}
	return b.State == "importing" && now.Sub(last) > BatchStall
}

// Errors a Store returns.
var (
	ErrNotFound  = errors.New("enrol: not found")
	ErrStale     = errors.New("enrol: state changed meanwhile")
	ErrDuplicate = errors.New("enrol: already invited or active")
)

// Store is the persistence enrol needs.
type Store interface {
	// SavePolicy stores body as the next version of the named policy and
	// returns the version.
	SavePolicy(ctx context.Context, name, body, actor string) (int, error)
	// Policy returns the current body and version of a policy.
	Policy(ctx context.Context, name string) (body string, version int, err error)
	// PolicyAt returns a given version of a policy.
	PolicyAt(ctx context.Context, name string, version int) (string, error)
	// PolicyNames lists the policies by name.
	PolicyNames(ctx context.Context) ([]string, error)

	Enrolment(ctx context.Context, id int64) (*Enrolment, error)
	Enrolments(ctx context.Context, f Filter) ([]*Enrolment, error)
	Link(ctx context.Context, hash []byte) (*Link, error)
	// RevocationLink returns the self-service revocation link with this
	// hash, or ErrNotFound.
	RevocationLink(ctx context.Context, hash []byte) (*RevocationLink, error)
	// CertificateFor returns the live certificate issued with this
	// ca.Request.Once key, or ErrNotFound.
	CertificateFor(ctx context.Context, once string) (*x509.Certificate, error)
	// AbandonReservation refuses the serial reserved for this
	// ca.Request.Once key before before and never signed and stored (its
	// process stopped in between), recording why, so that the key can be
	// issued again. It reports whether there was one.
	AbandonReservation(ctx context.Context, once string, before time.Time) (bool, error)
	// CertificateStatus returns what is known of a certificate's validity.
	CertificateStatus(ctx context.Context, serial string) (ca.CertificateStatus, error)
	Batch(ctx context.Context, id int64) (*Batch, error)

	// InTx runs fn in one write transaction.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Tx is the write side of Store, inside one transaction.
type Tx interface {
	RevocationTx

	// InsertEnrolment stores e and sets e.ID. It returns ErrDuplicate when
	// a live enrolment exists for the same policy and mailbox key.
	InsertEnrolment(e *Enrolment) error
	// InsertEnrolments stores es in order, skipping each one that would be
	// a second live enrolment for its policy and mailbox key; it sets the ID
	// of each stored one and reports which were stored. The mailbox keys of
	// es must be distinct.
	InsertEnrolments(es []*Enrolment) (stored []bool, err error)
	// LiveEnrolment returns the live enrolment (invited, submitted,
	// approved or issued) for policy and mailbox key, or ErrNotFound.
	LiveEnrolment(policy, mailboxKey string) (*Enrolment, error)
	// Transition moves enrolment id from state from (at revision rev) to
	// state e.State, writing the fields of e that the new state sets. It
	// returns ErrStale when the row is no longer in that state and revision.
	Transition(id int64, from State, rev int, e *Enrolment) error
	// AddApprover records a distinct approver and returns how many there are.
	AddApprover(id int64, approver string, at time.Time) (int, error)
	InsertLink(l Link) error
	InsertRevocationLink(l RevocationLink) error
	InsertLinks(ls []Link) error
	// UseLink marks an unused, unexpired link of the purpose as used and
	// returns it; ErrNotFound otherwise.
	UseLink(hash []byte, purpose Purpose, now time.Time) (*Link, error)
	// ReleaseLink makes a used link usable again, after an activation
	// whose request was refused.
	ReleaseLink(hash []byte) error
	// RetireLinks marks all unused links of an enrolment as used, so that a
	// resent link replaces the old one.
	RetireLinks(enrolmentID int64, purpose Purpose, now time.Time) error
	Enqueue(m Mail) error
	EnqueueAll(ms []Mail) error
	Audit(e Event) error
	// AuditAll appends events in order, as Audit would one by one.
	AuditAll(es []Event) error
	RecordValidation(v Validation) error
	InsertBatch(b *Batch) error
	// UpdateBatch stores the state, counts, times and error of b.
	UpdateBatch(b *Batch) error
	// InsertBatchRows stores the report lines of a batch's chunk, in the
	// transaction that stores the chunk's invitations, so the report holds
	// exactly the lines whose outcome committed.
	InsertBatchRows(batchID int64, rows []RowResult) error
	// FailStalledBatches marks failed, with msg as their error and done at
	// now, the batches still importing that have committed nothing since
	// quietSince (neither created nor updated), and returns their IDs. The
	// update is conditional on both, so of several nodes running it at once
	// exactly one fails each batch, and a batch that moved meanwhile is
	// left alone.
	FailStalledBatches(quietSince, now time.Time, msg string) ([]int64, error)
	// UseReferral records a referral token ID; ErrDuplicate when seen before.
	UseReferral(jti string, expires time.Time) error
	// SavePolicy stores body as the next version of the named policy and
	// returns the version, as Store.SavePolicy does, inside the
	// transaction. With base 0 or more it first checks, holding whatever
	// lock numbers the versions, that base is the current version (0: there
	// is none), and returns ErrStale when it is not; base -1 saves over any.
	SavePolicy(name, body, actor string, base int) (int, error)

	// Enrolment, Policy and PolicyAt read as Store's do, inside the
	// transaction: what a transition decides on is what it sees, and a
	// transaction never waits for a second connection (which, with a
	// bounded pool, could wait for ever).
	Enrolment(id int64) (*Enrolment, error)
	Policy(name string) (body string, version int, err error)
	PolicyAt(name string, version int) (string, error)
}
