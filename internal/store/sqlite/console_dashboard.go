package sqlite

import (
	"context"
	"fmt"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
)

// The queries of the RA Management Console's dashboard and audit log pages
// (internal/web/console's dashboardStore and auditStore) that the other
// stores do not already answer. *DB is passed as console.Store by
// cmd/mailca/serve.go, which checks the whole interface at compile time.

// ConsolePolicyCounts returns how many enrolments each policy has in each
// state: counts[policy][state]. It reads the table enrolment_counts, which
// triggers keep (migration 0010), rather than counting the enrolments: a
// few dozen rows however many enrolments there are.
func (db *DB) ConsolePolicyCounts(ctx context.Context) (map[string]map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT policy, state, n FROM enrolment_counts WHERE n <> 0`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: counting enrolments by policy: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var policy, state string
		var n int
		if err := rows.Scan(&policy, &state, &n); err != nil {
			return nil, fmt.Errorf("sqlite: counting enrolments by policy: %w", err)
		}
		if out[policy] == nil {
			out[policy] = map[string]int{}
		}
		out[policy][state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: counting enrolments by policy: %w", err)
	}
	return out, nil
}

// enrolmentStateCounts returns how many enrolments are in each state, from
// enrolment_counts.
func (db *DB) enrolmentStateCounts(ctx context.Context) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT state, SUM(n) FROM enrolment_counts GROUP BY state HAVING SUM(n) <> 0`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: counting enrolments: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("sqlite: counting enrolments: %w", err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: counting enrolments: %w", err)
	}
	return out, nil
}

// ConsoleAudit appends one audit event, in a transaction of its own, for
// what the console does outside the enrolment process (an audit log
// export).
func (db *DB) ConsoleAudit(ctx context.Context, actor, action, object, detail string) error {
	return db.InTx(ctx, func(tx enrol.Tx) error {
		return tx.Audit(enrol.Event{Actor: actor, Action: action, Object: object, Detail: detail})
	})
}

// ConsoleEnqueueTest enqueues the console's test message (template
// outbox.TestTemplate) to to, with its audit event, in one transaction.
func (db *DB) ConsoleEnqueueTest(ctx context.Context, actor, to, messageID string) error {
	return db.InTx(ctx, func(tx enrol.Tx) error {
		if err := tx.Enqueue(enrol.Mail{Template: outbox.TestTemplate, To: to, MessageID: messageID,
			Data: map[string]string{"Actor": actor}}); err != nil {
			return err
		}
		return tx.Audit(enrol.Event{Actor: actor, Action: "mail.test", Object: "mail:" + to, Detail: "test message enqueued"})
	})
}
