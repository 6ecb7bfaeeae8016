// Package postgres stores mailca's records in a PostgreSQL database that
// several mailca nodes may share.
//
// It speaks pgx natively over a pgxpool.Pool rather than through
// database/sql: the pool is the one that pgx tunes (statement cache per
// connection, health checks), bytea and bigint map onto []byte and int64
// without driver.Valuer detours, and a failed statement's SQLSTATE and
// constraint name come as a *pgconn.PgError, which is how unique violations
// become the same sentinel errors the SQLite store returns.
//
// The schema keeps the SQLite store's representation (times as Unix
// seconds, the audit log's as nanoseconds; text compared bytewise), so
// that the two stores return the same values; see migrations/.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailca/mailca/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys, for pg_advisory_lock and pg_advisory_xact_lock.
const (
	migrateLock int64 = 0x6d61696c63610001 // "mailca", migrations: one node migrates at a time
	auditLock   int64 = 0x6d61696c63610002 // the audit chain's head: one appender at a time
	countsLock  int64 = 0x6d61696c63610003 // enrolment_counts: one folder at a time (enrolmentCounts)
)

// DB is a PostgreSQL database opened for mailca.
type DB struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string; the password may also come from PGPASSWORD or a
// .pgpass file, as libpq reads them) and applies any migrations it lacks.
// It refuses a database whose schema is newer than this program knows.
// Errors never contain the URL's password.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's parse errors quote the connection string, password and all.
		return nil, fmt.Errorf("postgres: database URL %s does not parse", Redact(url))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool, now: time.Now}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Redact returns url with the password, if any, replaced by "xxxxx", for
// logs and error messages.
func Redact(s string) string {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "(unparsable URL)"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	// A key=value connection string.
	fields := strings.Fields(s)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			fields[i] = k + "=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// SetClock replaces the clock used for record times; for tests.
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// Ping runs a trivial query, to show that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	return db.pool.QueryRow(ctx, `SELECT 1`).Scan(&n)
}

// knownMigrations are the embedded migrations, read once.
var knownMigrations, migrationsErr = store.Migrations(migrations, "migrations")

// SchemaVersion returns the newest migration this program knows.
func SchemaVersion() int { return store.Newest(knownMigrations) }

// Version returns the schema version of the database.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// migrate applies each missing migration in its own transaction. A
// session advisory lock makes nodes that start together migrate one after
// the other: the second finds the work done.
func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if migrationsErr != nil {
		return migrationsErr
	}
	if err := store.CheckSchema(current, knownMigrations); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for _, m := range knownMigrations {
		if m.Version <= current {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: the simple protocol, which runs every
			// statement of the file.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			if step := migrationSteps[m.Version]; step != nil {
				if err := step(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.Version, db.now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.File, err)
		}
	}
	return nil
}

// maxAttempts bounds the retries of a transaction that PostgreSQL aborted
// for a serialization failure or a deadlock.
const maxAttempts = 5

// retryable reports whether err aborted a transaction that may simply be
// run again: a serialization failure (40001) or a deadlock (40P01).
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// tx runs fn in a read-committed transaction, committing when fn returns
// nil, and runs it again when PostgreSQL aborted it for a serialization
// failure or a deadlock. fn must therefore be safe to run more than once.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range maxAttempts {
		err = pgx.BeginFunc(ctx, db.pool, fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

// uniqueViolation returns the name of the constraint or index whose
// uniqueness err violated (SQLSTATE 23505), or "".
func uniqueViolation(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		if pe.ConstraintName == "" {
			return "?"
		}
		return pe.ConstraintName
	}
	return ""
}

// countByState returns how many rows of table are in each state. table
// is one of the package's own table names, never input.
func (db *DB) countByState(ctx context.Context, table string) (map[string]int, error) {
	rows, err := db.pool.Query(ctx, `SELECT state, COUNT(*) FROM `+table+` GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("postgres: counting %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("postgres: counting %s: %w", table, err)
		}
		out[s] = n
	}
	return out, rows.Err()
}

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func unixPtr(s *int64) time.Time {
	if s == nil {
		return time.Time{}
	}
	return unix(*s)
}

func nullUnix(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// limit is n as a LIMIT argument. SQLite reads a negative LIMIT as no
// limit, and PostgreSQL refuses one; NULL is PostgreSQL's no limit.
func limit(n int) any {
	if n < 0 {
		return nil
	}
	return n
}

// bulkInsert returns "INSERT INTO table (cols) VALUES ($1,..),($k,..)..."
// for n rows, with suffix appended.
func bulkInsert(table, cols string, n int, suffix string) string {
	ncols := strings.Count(cols, ",") + 1
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, cols)
	p := 1
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := 0; j < ncols; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(p))
			p++
		}
		b.WriteByte(')')
	}
	b.WriteString(suffix)
	return b.String()
}

// bulkRows is the most rows one statement takes: 17 columns × 1,000 rows
// stays well below PostgreSQL's limit of 65,535 bound parameters.
const bulkRows = 1000
