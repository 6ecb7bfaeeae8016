package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/mailca/mailca/internal/store/sqlite"
)

// TestNewerSchemaRefused opens a database that a newer mailca migrated:
// Open refuses it, as the PostgreSQL store does.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailca.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, sqlite.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	if db, err := sqlite.Open(ctx, path); err == nil {
		db.Close()
		t.Fatalf("Open of a database at schema %d succeeded; this mailca knows %d", sqlite.SchemaVersion()+1, sqlite.SchemaVersion())
	}
}
