package store

import (
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

// The list queries of the RA console's pages (internal/web/console). Each
// is a keyset query: a page starts after the row named by its cursor, so
// it costs the same at the first row and at the millionth.

// EnrolmentQuery selects enrolments for the invitations list. At most one
// of Mailbox and Name is used; without either, the list is newest first,
// and with one it is in the order of that key.
type EnrolmentQuery struct {
	State    enrol.State // "" for every state
	Policies []string    // only enrolments of these policies; empty for all
	// Mailbox is a prefix of the mailbox's key (mailbox.Address.Key: the
	// local part case-folded, the domain in lower case).
	Mailbox string
	// Surname is a prefix of the surname, and GivenName, when set as well,
	// of the given name; both are compared by NameKey, so in any case.
	Surname   string
	GivenName string
	BatchID   int64 // only the enrolments of this CSV batch; 0 for any
	After     int64 // the ID of the previous page's last row; 0 for the first page
	Limit     int   // see PageLimit
}

// QueueQuery selects the applications waiting for approval, oldest
// submission first.
type QueueQuery struct {
	Policies []string // only applications of these policies; empty for all
	After    int64    // the ID of the previous page's last row; 0 for the first page
	Limit    int      // see PageLimit
}

// CertificateQuery selects issued certificates. At most one of Mailbox,
// Surname and Serial is used; without any, the list is newest first, and
// with one it is in the order of that key.
type CertificateQuery struct {
	Mailbox  string   // a prefix of the mailbox, as stored (A-label domain)
	Surname  string   // a prefix of the surname of the enrolment it was issued to, compared by NameKey
	Serial   string   // a prefix of the serial: lower-case hex without leading zeros
	Policies []string // only certificates issued under these policies; empty for all, including those issued outside enrolment
	After    string   // the serial of the previous page's last row; "" for the first page
	Limit    int      // see PageLimit
}

// CertificateRow is one issued certificate with the enrolment it was
// issued to, if any.
type CertificateRow struct {
	Serial    string
	IssuerID  string
	Profile   string
	Mailbox   string
	NotBefore time.Time
	NotAfter  time.Time
	RevokedAt time.Time // zero while not revoked
	Reason    ca.RevocationReason
	DER       []byte // only from Certificate, not from lists

	EnrolmentID int64  // 0 when issued outside enrolment
	Policy      string // "" when issued outside enrolment
	GivenName   string
	Surname     string
}

// BatchRow is one row of a CSV batch's report, as enrol.InviteCSV reported it.
type BatchRow struct {
	Line        int
	Email       string // as found in the file, made printable
	Invited     bool
	EnrolmentID int64
	Reason      string // empty when invited
	Detail      string
}
