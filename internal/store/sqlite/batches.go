package sqlite

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
		if _, err := t.exec(bulkInsert("batch_rows", "batch_id, line, email, invited, enrolment_id, reason, detail", len(part), ""), args...); err != nil {
			return fmt.Errorf("sqlite: storing batch report: %w", err)
		}
	}
	return nil
}

// FailStalledBatches implements enrol.Tx with one conditional UPDATE.
func (t *enrolTx) FailStalledBatches(quietSince, now time.Time, msg string) ([]int64, error) {
	rows, err := t.tx.QueryContext(t.ctx, `UPDATE batches SET state = 'failed', error = ?, done_at = ?, updated_at = ?
		WHERE state = 'importing' AND MAX(created_at, updated_at) < ? RETURNING id`,
		msg, now.Unix(), now.Unix(), quietSince.Unix())
	if err != nil {
		return nil, fmt.Errorf("sqlite: failing stalled batches: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: failing stalled batches: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: failing stalled batches: %w", err)
	}
	return ids, nil
}
