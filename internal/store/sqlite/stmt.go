package sqlite

import (
	"context"
	"database/sql"
)

// txStmts gives a transaction prepared statements. SQLite spends more time
// parsing a small INSERT than running it, so preparing once matters.
//
// A statement prepared on the writer pool is reused through tx.StmtContext,
// which finds it already prepared on the pool's one connection. One that is
// not is prepared on the transaction (the pool's connection is held by the
// transaction, so preparing on the pool would wait for it forever) and
// noted, and db.tx prepares it on the pool once the transaction is over.
type txStmts struct {
	ctx    context.Context
	db     *DB
	tx     *sql.Tx
	stmts  map[string]*sql.Stmt
	missed []string
}

// maxCachedQuery keeps the multi-row statements of odd sizes out of the
// writer's statement cache.
const maxCachedQuery = 4096

func (t *txStmts) stmt(q string) (*sql.Stmt, error) {
	if s, ok := t.stmts[q]; ok {
		return s, nil
	}
	var s *sql.Stmt
	if ps, ok := t.db.stmts.Load(q); ok {
		s = t.tx.StmtContext(t.ctx, ps.(*sql.Stmt))
	} else {
		var err error
		if s, err = t.tx.PrepareContext(t.ctx, q); err != nil {
			return nil, err
		}
		if len(q) <= maxCachedQuery {
			t.missed = append(t.missed, q)
		}
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = s
	return s, nil
}

func (t *txStmts) exec(q string, args ...any) (sql.Result, error) {
	s, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(t.ctx, args...)
}

func (t *txStmts) queryRow(q string, args ...any) *sql.Row {
	s, err := t.stmt(q)
	if err != nil {
		return t.tx.QueryRowContext(t.ctx, q, args...) // reports the same error on Scan
	}
	return s.QueryRowContext(t.ctx, args...)
}

// writeStmt returns q prepared on the writer pool, for statements that run
// on their own, outside any transaction. Never call it inside db.tx: the
// transaction holds the pool's only connection, and preparing would wait for
// it forever.
func (db *DB) writeStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := db.stmts.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.write.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// readStmt returns q prepared on the reader pool. database/sql prepares it
// again on each connection of the pool as needed.
func (db *DB) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := db.readStmts.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.read.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.readStmts.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// readRow runs a one-row query through the reader statement cache.
func (db *DB) readRow(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := db.readStmt(ctx, q)
	if err != nil {
		return db.read.QueryRowContext(ctx, q, args...) // reports the error on Scan
	}
	return s.QueryRowContext(ctx, args...)
}
