package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/store"
)

// migrationSteps are what a migration needs Go for, run in its
// transaction after its SQL.
var migrationSteps = map[int]func(context.Context, pgx.Tx) error{
	10: foldNames,
}

// foldNames writes the name keys (store.NameKey) of the enrolments whose
// names are not all ASCII: migration 0010 gave every row lower() of its
// names, which on the "C" collation is the key of ASCII names only.
func foldNames(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT id, surname, given_name FROM enrolments WHERE surname ~ '[^\x01-\x7f]' OR given_name ~ '[^\x01-\x7f]'`)
	if err != nil {
		return fmt.Errorf("postgres: folding names: %w", err)
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
			return fmt.Errorf("postgres: folding names: %w", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: folding names: %w", err)
	}
	for _, r := range rs {
		if _, err := tx.Exec(ctx, `UPDATE enrolments SET surname_key = $1, given_name_key = $2 WHERE id = $3`,
			store.NameKey(r.surname), store.NameKey(r.given), r.id); err != nil {
			return fmt.Errorf("postgres: folding names: %w", err)
		}
	}
	return nil
}
