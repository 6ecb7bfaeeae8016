package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/store/postgres"
	"github.com/mailca/mailca/internal/store/postgres/pgtest"
)

// usePostgres points the data directory dir at url.
func usePostgres(t *testing.T, dir, url string) {
	t.Helper()
	path := filepath.Join(dir, "mailca.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), `url = "sqlite:mailca.db"`, "url = "+strconv.Quote(url), 1)
	if cfg == string(b) {
		t.Fatal("no database.url in mailca.toml")
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresDatabase runs the commands of a data directory whose
// database is PostgreSQL.
func TestPostgresDatabase(t *testing.T) {
	url := pgtest.SchemaURL(t)
	dir := initDir(t)
	usePostgres(t, dir, url)

	want := "version " + strconv.Itoa(postgres.SchemaVersion()) + " (this mailca knows up to " + strconv.Itoa(postgres.SchemaVersion()) + ")"
	if out := mustMailca(t, "migrate", "--dir", dir); !strings.Contains(out, want) {
		t.Errorf("migrate: %q, want %q", out, want)
	}
	// migrate made the database ready: the default policy is there, and
	// the CA's own keys are blocked.
	if out := mustMailca(t, "policy", "list", "--dir", dir); !strings.Contains(out, "default") {
		t.Errorf("policy list: %q, want the default policy", out)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var blocked int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM blocked_keys`).Scan(&blocked); err != nil || blocked != 2 {
		t.Errorf("%d blocked keys, %v; want the root's and the issuing CA's", blocked, err)
	}
	// Migrating again changes nothing.
	mustMailca(t, "migrate", "--dir", dir)
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM blocked_keys`).Scan(&blocked); err != nil || blocked != 2 {
		t.Errorf("after a second migrate: %d blocked keys, %v", blocked, err)
	}

	mustMailca(t, "invite", "--dir", dir, "--email", "alice@example.com")
	if out := mustMailca(t, "enrolments", "--dir", dir); !strings.Contains(out, "alice@example.com") {
		t.Errorf("enrolments: %q, want alice", out)
	}
	if out := mustMailca(t, "audit", "verify", "--dir", dir); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "backups")); err == nil {
		t.Error("backups directory exists before any backup")
	}
	if code, _, errOut := mailca(t, "backup", "--dir", dir); code != 1 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup of a PostgreSQL database: exit %d, %q; want a refusal naming pg_dump", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "backups")); err == nil {
		t.Error("a refused backup made the backups directory")
	}

	// A database migrated by a newer mailca is refused, by every command.
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, postgres.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"migrate", "--dir", dir}, {"enrolments", "--dir", dir}} {
		if code, _, errOut := mailca(t, args...); code != 1 || !strings.Contains(errOut, "newer") {
			t.Errorf("mailca %s on a newer schema: exit %d, %q", args[0], code, errOut)
		}
	}
}

// TestPostgresPasswordNotShown gives a URL with a password to a server
// that does not answer: the error does not show the password.
func TestPostgresPasswordNotShown(t *testing.T) {
	dir := initDir(t)
	usePostgres(t, dir, "postgres://mailca:s3cret-pw@127.0.0.1:1/mailca?sslmode=disable&connect_timeout=5")
	code, out, errOut := mailca(t, "migrate", "--dir", dir)
	if code != 1 {
		t.Fatalf("migrate against no server: exit %d", code)
	}
	if strings.Contains(out+errOut, "s3cret-pw") {
		t.Errorf("migrate printed the password: %q", out+errOut)
	}
}
