package postgres_test

import (
	"context"
	"testing"

	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/postgres"
	"github.com/mailca/mailca/internal/store/postgres/pgtest"
	"github.com/mailca/mailca/internal/store/storetest"
)

// openDB opens a new, migrated database in a schema of its own, closed
// when t ends.
func openDB(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.SchemaURL(t))
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openDB(t) })
}
