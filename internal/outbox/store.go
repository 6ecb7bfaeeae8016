// Package outbox delivers the emails that enrolment transitions enqueue, durably and once.
package outbox

import (
	"context"
	"time"
)

// Message is one queued email as stored: a template name and its data,
// rendered when it is delivered or shown.
type Message struct {
	ID          int64
	Template    string
	TemplateSet string
	To          string
	EnrolmentID int64
	Data        map[string]string // nil once sent: it may have held link tokens
	MessageID   string
	State       string // "pending", "sent" or "failed"
	Attempts    int
	LastError   string
	CreatedAt   time.Time
	NextAttempt time.Time
	SentAt      time.Time
}

// Filter selects messages, newest first; Before is a keyset cursor on ID.
type Filter struct {
	State  string
	To     string
	Before int64
	Limit  int
}

// Store is the persistence the outbox needs.
type Store interface {
	// ClaimDue leases up to n pending messages due at now for lease, so no
	// other worker takes them meanwhile, and returns them.
	ClaimDue(ctx context.Context, now time.Time, n int, lease time.Duration) ([]Message, error)
	// MarkSent records delivery and erases the message data.
	MarkSent(ctx context.Context, id int64, now time.Time) error
	// MarkRetry records a temporary failure and when to try again.
	MarkRetry(ctx context.Context, id int64, next time.Time, reason string) error
	// MarkFailed records a permanent failure.
	MarkFailed(ctx context.Context, id int64, reason string) error
	Messages(ctx context.Context, f Filter) ([]Message, error)
	Message(ctx context.Context, id int64) (*Message, error)
	// Counts returns how many messages are in each state.
	Counts(ctx context.Context) (map[string]int, error)
}
