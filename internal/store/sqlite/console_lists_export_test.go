package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mailca/mailca/internal/store"
)

// ConsolePlans returns the query plan of each statement the console list
// query q (a store.EnrolmentQuery, QueueQuery, CertificateQuery or
// AuditQuery) runs, one line per step, as EXPLAIN QUERY PLAN reports it.
func ConsolePlans(ctx context.Context, db *DB, q any) ([][]string, error) {
	var qs []query
	switch q := q.(type) {
	case store.AuditQuery:
		s, err := db.auditFilterSQL(ctx, q)
		if err != nil {
			return nil, err
		}
		qs = []query{s}
	case store.EnrolmentQuery:
		qs = listEnrolmentsSQL(q)
	case store.QueueQuery:
		qs = []query{listApplicationsSQL(q)}
	case store.CertificateQuery:
		qs = []query{listCertificatesSQL(q)}
	default:
		return nil, fmt.Errorf("no list query %T", q)
	}
	var out [][]string
	for _, s := range qs {
		rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+s.q, s.args...)
		if err != nil {
			return nil, err
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				rows.Close()
				return nil, err
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out = append(out, plan)
	}
	return out, nil
}

// AuditSortMax and AuditSeqSortMax are auditSortMax and auditSeqSortMax,
// for the tests.
const (
	AuditSortMax    = auditSortMax
	AuditSeqSortMax = auditSeqSortMax
)

// FoldNames runs migration 0010's Go step, foldNames, on db.
func FoldNames(ctx context.Context, db *DB) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return foldNames(ctx, tx) })
}

// Exec runs a statement on db's writer, for tests that set up what an
// older version left.
func Exec(ctx context.Context, db *DB, q string, args ...any) error {
	_, err := db.write.ExecContext(ctx, q, args...)
	return err
}
