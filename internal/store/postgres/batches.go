package postgres

import (
	"fmt"
	"time"

	"github.com/mailca/mailca/internal/enrol"
)

// InsertBatchRows implements enrol.Tx: a chunk's report lines in
// multi-row INSERTs, in the chunk's transaction.
func (t *enrolTx) InsertBatchRows(batchID int64, rows []enrol.RowResult) error {
	for start := 0; start < len(rows); start += bulkRows {
		part := rows[start:min(start+bulkRows, len(rows))]
		args := make([]any, 0, len(part)*7)
		for _, r := range part {
			var id any
			if r.EnrolmentID != 0 {
				id = r.EnrolmentID
			}
			args = append(args, batchID, r.Line, r.Email, r.Invited, id, r.Reason, r.Detail)
		}
		if _, err := t.tx.Exec(t.ctx, bulkInsert("batch_rows", "batch_id, line, email, invited, enrolment_id, reason, detail", len(part), ""), args...); err != nil {
			return fmt.Errorf("postgres: storing batch report: %w", err)
		}
	}
	return nil
}

// FailStalledBatches implements enrol.Tx with one conditional UPDATE. Under
// READ COMMITTED a second node's UPDATE waits for the first's row locks
// and then re-checks the WHERE clause, which the failed rows no longer
// match: each batch is failed once.
func (t *enrolTx) FailStalledBatches(quietSince, now time.Time, msg string) ([]int64, error) {
	rows, err := t.tx.Query(t.ctx, `UPDATE batches SET state = 'failed', error = $1, done_at = $2, updated_at = $2
		WHERE state = 'importing' AND GREATEST(created_at, updated_at) < $3 RETURNING id`,
		msg, now.Unix(), quietSince.Unix())
	if err != nil {
		return nil, fmt.Errorf("postgres: failing stalled batches: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("postgres: failing stalled batches: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: failing stalled batches: %w", err)
	}
	return ids, nil
}
