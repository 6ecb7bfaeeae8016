// Package store declares what a mailca node needs of its database, which
// store/sqlite and store/postgres both provide.
package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/schedule"
	"github.com/mailca/mailca/internal/web/api"
	"github.com/mailca/mailca/internal/webhook"
)

// Store is the union of the consumers' interfaces and the few methods the
// commands call directly: what a mailca node needs of its database. Its
// transactions (enrol.Store.InTx) also implement enrol.LifecycleTx.
type Store interface {
	enrol.Store
	enrol.LifecycleStore
	ca.Store
	ca.CRLStore
	ca.StatusStore
	ca.RevocationFeed
	outbox.Store
	schedule.Store
	auth.Store    // console accounts and sessions
	apikey.Store  // API keys
	webhook.Store // webhook endpoints and deliveries
	api.Store     // the integration API's reads
	Console       // the RA console's queries

	// BlockKey records that the key with this SPKI hash may never be
	// certified. Blocking a blocked key again is not an error.
	BlockKey(ctx context.Context, spkiHash []byte, reason string) error
	// CountEnrolments returns how many enrolments are in each state.
	CountEnrolments(ctx context.Context) (map[enrol.State]int, error)

	// AuditEvents calls fn with every audit event, oldest first, read from
	// one snapshot; an error from fn stops the iteration and is returned.
	AuditEvents(ctx context.Context, fn func(audit.Record) error) error
	// AuditScan is AuditEvents restricted to the events q selects; q.Limit
	// is ignored.
	AuditScan(ctx context.Context, q AuditQuery, fn func(audit.Record) error) error
	// AuditFilter returns one page of the events q selects, newest first.
	AuditFilter(ctx context.Context, q AuditQuery) ([]audit.Record, error)

	// WebhookDeliveries returns the newest webhook deliveries, at most
	// limit, for the command line.
	WebhookDeliveries(ctx context.Context, limit int) ([]WebhookDelivery, error)

	// Ping shows that the database answers a trivial query.
	Ping(ctx context.Context) error
	// Version returns the schema version of the database.
	Version(ctx context.Context) (int, error)
	// Close releases the database.
	Close() error
}

// Console is what the RA console (internal/web/console, whose Store
// interface cannot be embedded here: that package imports this one) asks
// of the database beyond the interfaces Store embeds.
type Console interface {
	// ConsolePolicyCounts returns counts[policy][state] of enrolments.
	ConsolePolicyCounts(ctx context.Context) (map[string]map[string]int, error)
	// ConsoleAudit appends one audit event in a transaction of its own.
	ConsoleAudit(ctx context.Context, actor, action, object, detail string) error
	// ConsoleEnqueueTest enqueues a test message to to, with its audit
	// event, in one transaction.
	ConsoleEnqueueTest(ctx context.Context, actor, to, messageID string) error
	// ListEnrolments returns a page of enrolments, newest first or in the
	// order of the key searched; q.After is the previous page's last ID.
	ListEnrolments(ctx context.Context, q EnrolmentQuery) ([]*enrol.Enrolment, error)
	// ListApplications returns a page of the applications waiting for
	// approval, oldest submission first, with their approvers so far.
	ListApplications(ctx context.Context, q QueueQuery) ([]*enrol.Enrolment, error)
	// ListCertificates returns a page of issued certificates; q.After is
	// the previous page's last serial.
	ListCertificates(ctx context.Context, q CertificateQuery) ([]CertificateRow, error)
	// CertificateRow returns an issued certificate with its DER, or
	// enrol.ErrNotFound.
	CertificateRow(ctx context.Context, serial string) (*CertificateRow, error)
	// EnrolmentHistory returns the audit events of an enrolment, oldest first.
	EnrolmentHistory(ctx context.Context, id int64) ([]audit.Record, error)
	// EnrolmentValidations returns how an enrolment's mailbox was validated.
	EnrolmentValidations(ctx context.Context, id int64) ([]enrol.Validation, error)
	// RecentBatches returns the newest batches, newest first.
	RecentBatches(ctx context.Context, limit int) ([]*enrol.Batch, error)
	// BatchRows returns up to limit report rows after the given line.
	BatchRows(ctx context.Context, batchID int64, afterLine int, refusedOnly bool, limit int) ([]BatchRow, error)
	// ScanBatchRows calls fn with every report row, in line order.
	ScanBatchRows(ctx context.Context, batchID int64, fn func(BatchRow) error) error
}

// ErrNoMessage is returned for an outbox message that does not exist.
var ErrNoMessage = errors.New("store: no such message")

// AuditQuery selects audit events. Its zero value selects every event.
type AuditQuery struct {
	Actor  string    // only events by this actor, exactly ("cli", "admin:ann@example.com")
	Action string    // only events with this action, exactly ("enrolment.invite")
	Object string    // only events whose object starts with this ("enrolment:42", "batch:")
	Since  time.Time // only events at or after this time
	Until  time.Time // only events before this time
	Before int64     // only events with a sequence number below this; the keyset cursor of AuditFilter
	Limit  int       // AuditFilter returns at most this many; 0 means 100, more than 1000 means 1000
}

// Describe says which events q selects, on one line, for the audit event
// that records an export: "all events", or "events with actor "cli",
// since 2026-01-31T00:00:00Z".
func (q AuditQuery) Describe() string {
	var parts []string
	for _, f := range [][2]string{{"actor", q.Actor}, {"action", q.Action}, {"object", q.Object}} {
		if f[1] != "" {
			parts = append(parts, f[0]+" "+strconv.Quote(f[1]))
		}
	}
	if !q.Since.IsZero() {
		parts = append(parts, "since "+q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		parts = append(parts, "until "+q.Until.UTC().Format(time.RFC3339Nano))
	}
	if len(parts) == 0 {
		return "all events"
	}
	return "events with " + strings.Join(parts, ", ")
}

// PageLimit is the page size rule of the list queries: no limit means 100,
// and more than 1,000 means 1,000 rather than a silent 100.
func PageLimit(n int) int {
	if n <= 0 {
		return 100
	}
	return min(n, 1000)
}
