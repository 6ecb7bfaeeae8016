package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mailca/mailca/internal/store"
)

// migrationSteps are what a migration needs Go for, run in its
// transaction after its SQL.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	10: foldNames,
}

// foldNames writes the name keys (store.NameKey) of the enrolments whose
// names are not all ASCII: migration 0010 gave every row lower() of its
// names, which is the key of ASCII names only.
func foldNames(ctx context.Context, tx *sql.Tx) error {
	const nonASCII = `GLOB '*[^' || char(1) || '-' || char(127) || ']*'`
	rows, err := tx.QueryContext(ctx, `SELECT id, surname, given_name FROM enrolments WHERE surname `+nonASCII+` OR given_name `+nonASCII)
	if err != nil {
		return fmt.Errorf("sqlite: folding names: %w", err)
	}
	type row struct {
		id             int64
		surname, given string
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.surname, &r.given); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: folding names: %w", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlite: folding names: %w", err)
	}
	for _, r := range rs {
		if _, err := tx.ExecContext(ctx, `UPDATE enrolments SET surname_key = ?, given_name_key = ? WHERE id = ?`,
			store.NameKey(r.surname), store.NameKey(r.given), r.id); err != nil {
			return fmt.Errorf("sqlite: folding names: %w", err)
		}
	}
	return nil
}
