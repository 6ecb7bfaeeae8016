// Package pgtest gives tests a PostgreSQL schema of their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/store/postgres"
)

// DefaultURL is the test server used when MAILCA_TEST_POSTGRES_URL is
// unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the URL of the test server, MAILCA_TEST_POSTGRES_URL
// or DefaultURL. When no server answers there, tb is skipped, except under
// CI=true, where it fails: CI must run the PostgreSQL tests.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("MAILCA_TEST_POSTGRES_URL")
	if u == "" {
		u = DefaultURL
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL at %s: %v", postgres.Redact(u), err)
		}
		tb.Skipf("no PostgreSQL at %s (set MAILCA_TEST_POSTGRES_URL): %v", postgres.Redact(u), err)
	}
	conn.Close(context.Background())
	return u
}

// SchemaURL creates an empty schema for tb on the test server, dropped
// with everything in it when tb ends, and returns the server's URL with
// that schema as its search_path.
func SchemaURL(tb testing.TB) string {
	tb.Helper()
	base := ServerURL(tb)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "mailca_test_" + hex.EncodeToString(b)
	exec := func(q string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, q)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		tb.Fatalf("creating schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		if err := exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			tb.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
