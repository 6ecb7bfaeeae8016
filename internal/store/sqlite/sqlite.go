// Package sqlite stores mailca's records in an embedded SQLite database.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mailca/mailca/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a SQLite database opened for mailca. SQLite allows one writer at a
// time, so writes go through a pool of one connection and reads through a
// separate pool; WAL lets readers proceed while the writer works.
type DB struct {
	path  string
	write *sql.DB
	read  *sql.DB
	now   func() time.Time

	stmts     sync.Map // query text -> *sql.Stmt on the writer pool; see writeStmt
	readStmts sync.Map // query text -> *sql.Stmt on the reader pool; see readStmt

	stopCheckpoints context.CancelFunc
	checkpointsDone chan struct{}
}

// checkpointEvery is how often the background checkpointer copies the WAL
// into the database file.
const checkpointEvery = time.Second

// Open opens (creating if needed) the database at path and applies any
// migrations it lacks. It refuses a database whose schema is newer than
// this program knows.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{})
}

// Options adjusts how a database is opened. The zero value is the default.
type Options struct {
	// Durable makes every commit wait until it is on disk
	// (synchronous=FULL). The default (NORMAL, in WAL mode) never corrupts
	// the database and loses nothing when mailca crashes, but a power
	// failure or kernel crash can undo the last commits; FULL costs an
	// fsync per commit, milliseconds on many disks.
	Durable bool
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*DB, error) {
	db := &DB{path: path, now: time.Now}
	var err error
	sync := "NORMAL"
	if o.Durable {
		sync = "FULL"
	}
	if db.write, err = sql.Open("sqlite", dsn(path, true, sync)); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.write.SetMaxOpenConns(1)
	if db.read, err = sql.Open("sqlite", dsn(path, false, "NORMAL")); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.read.SetMaxOpenConns(4)
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.startCheckpoints()
	return db, nil
}

// startCheckpoints moves WAL checkpoints off the writer. SQLite checkpoints
// automatically in the connection that commits, which then waits for the
// fsyncs of the database file; on a virtual disk that is milliseconds per
// checkpoint, paid by whichever request was unlucky. The writer has
// automatic checkpoints off (see dsn), and this goroutine runs a passive
// checkpoint every second on a reader connection instead: it never blocks
// the writer or readers, and the WAL stays small.
func (db *DB) startCheckpoints() {
	ctx, cancel := context.WithCancel(context.Background())
	db.stopCheckpoints, db.checkpointsDone = cancel, make(chan struct{})
	go func() {
		defer close(db.checkpointsDone)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				db.checkpoint(ctx, "PASSIVE")
			}
		}
	}()
}

func (db *DB) checkpoint(ctx context.Context, mode string) error {
	_, err := db.read.ExecContext(ctx, "PRAGMA wal_checkpoint("+mode+")")
	return err
}

// dsn builds the connection string. Every connection gets WAL, foreign
// keys, a busy timeout and the given synchronisation (NORMAL: durable at
// each WAL checkpoint and never corrupt; FULL: durable at each commit);
// writers take the write lock when their transaction begins, so two
// writers never deadlock upgrading a read lock.
func dsn(path string, writer bool, synchronous string) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(" + synchronous + ")"} {
		q.Add("_pragma", p)
	}
	if writer {
		q.Set("_txlock", "immediate")
		q.Add("_pragma", "wal_autocheckpoint(0)") // see startCheckpoints
		// 64 MiB of page cache: the indexes of a large table stay in memory
		// rather than being read back from the file for each insert.
		q.Add("_pragma", "cache_size(-65536)")
	}
	return "file:" + path + "?" + q.Encode()
}

// Close closes the database.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		db.stopCheckpoints()
		<-db.checkpointsDone
		// Leave a short WAL behind for the next process.
		db.checkpoint(context.Background(), "PASSIVE")
	}
	return errors.Join(db.write.Close(), db.read.Close())
}

// SetClock replaces the clock used for record times; for tests.
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// knownMigrations are the embedded migrations, read once.
var knownMigrations, migrationsErr = store.Migrations(migrations, "migrations")

// SchemaVersion returns the newest migration this program knows.
func SchemaVersion() int { return store.Newest(knownMigrations) }

// migrate applies each missing migration in its own transaction.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	var current int
	if err := db.write.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if migrationsErr != nil {
		return migrationsErr
	}
	if err := store.CheckSchema(current, knownMigrations); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	for _, m := range knownMigrations {
		if m.Version <= current {
			continue
		}
		err := db.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			if step := migrationSteps[m.Version]; step != nil {
				if err := step(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.Version, db.now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.File, err)
		}
	}
	return nil
}

// tx runs fn in a write transaction, committing when fn returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// stmtTx runs fn in a write transaction with a statement cache (see
// txStmts), and afterwards prepares on the writer pool what the
// transaction had to prepare for itself.
func (db *DB) stmtTx(ctx context.Context, fn func(*txStmts) error) error {
	ts := &txStmts{ctx: ctx, db: db}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		ts.tx = tx
		return fn(ts)
	})
	for _, q := range ts.missed {
		db.writeStmt(context.WithoutCancel(ctx), q) // an error here only costs speed
	}
	return err
}

// constraint returns the extended SQLite result code of a constraint
// violation in err, or 0.
func constraint(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return se.Code()
	}
	return 0
}

// countByState returns how many rows of table are in each state. table
// is one of the package's own table names, never input.
func (db *DB) countByState(ctx context.Context, table string) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT state, COUNT(*) FROM `+table+` GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: counting %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("sqlite: counting %s: %w", table, err)
		}
		out[s] = n
	}
	return out, rows.Err()
}
