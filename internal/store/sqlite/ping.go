package sqlite

import "context"

// Ping runs a trivial query on a reader connection, to show that the
// database file can be opened and read.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	return db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&n)
}
