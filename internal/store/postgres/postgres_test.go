package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store/postgres"
	"github.com/mailca/mailca/internal/store/postgres/pgtest"
)

func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestOpenTogether opens one new database from several nodes at once: one
// migrates, the others wait for it, and all find the schema current.
func TestOpenTogether(t *testing.T) {
	url := pgtest.SchemaURL(t)
	dbs := make([]*postgres.DB, 4)
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(context.Background(), url) })
	}
	wg.Wait()
	for i, db := range dbs {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i, errs[i])
			continue
		}
		defer db.Close()
		if v, err := db.Version(context.Background()); err != nil || v != postgres.SchemaVersion() {
			t.Errorf("Version #%d = %d, %v; want %d", i, v, err, postgres.SchemaVersion())
		}
	}
}

// TestNewerSchemaRefused opens a database that a newer mailca migrated:
// Open refuses it, as the SQLite store does, and changes nothing.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	url := pgtest.SchemaURL(t)
	open(t, url).Close()
	// Opening again at the current version is fine.
	open(t, url).Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	newer := postgres.SchemaVersion() + 1
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, newer); err != nil {
		t.Fatal(err)
	}
	if db, err := postgres.Open(ctx, url); err == nil {
		db.Close()
		t.Fatalf("Open of a database at schema %d succeeded; this mailca knows %d", newer, postgres.SchemaVersion())
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != postgres.SchemaVersion()+1 {
		t.Errorf("schema_migrations has %d rows, %v; want %d", n, err, postgres.SchemaVersion()+1)
	}
}

// TestTwoNodes runs the background work of two nodes, each with its own
// connection pool, on one database.
func TestTwoNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.SchemaURL(t)
	nodes := []*postgres.DB{open(t, url), open(t, url)}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	// One job, claimed by both at once: one runs it.
	won := make([]bool, 2)
	var wg sync.WaitGroup
	for i, db := range nodes {
		wg.Go(func() {
			ok, err := db.ClaimJob(ctx, "remind", fmt.Sprint("node", i), now, time.Minute)
			if err != nil {
				t.Errorf("ClaimJob on node %d: %v", i, err)
			}
			won[i] = ok
		})
	}
	wg.Wait()
	if won[0] == won[1] {
		t.Errorf("ClaimJob by two nodes: %v, want exactly one", won)
	}

	// CRL numbers from both nodes are distinct and increasing.
	var mu sync.Mutex
	var numbers []int64
	for _, db := range nodes {
		wg.Go(func() {
			for range 10 {
				n, err := db.NextCRLNumber(ctx, "iss")
				if err != nil {
					t.Errorf("NextCRLNumber: %v", err)
					return
				}
				mu.Lock()
				numbers = append(numbers, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(numbers)
	if len(slices.Compact(slices.Clone(numbers))) != 20 || numbers[0] != 1 || numbers[19] != 20 {
		t.Errorf("CRL numbers from two nodes: %v, want 1 to 20", numbers)
	}

	// Both append to one audit chain, and invite the same people: each
	// person is invited once, and the chain verifies.
	if _, err := nodes[0].SavePolicy(ctx, "p", "{}", "test"); err != nil {
		t.Fatal(err)
	}
	invited := make([]int, 2)
	for i, db := range nodes {
		wg.Go(func() {
			for j := range 20 {
				m := fmt.Sprintf("user%d@example.com", j)
				err := db.InTx(ctx, func(tx enrol.Tx) error {
					e := &enrol.Enrolment{Policy: "p", PolicyVersion: 1, State: enrol.Invited, Channel: enrol.ViaInvitation,
						Mailbox: m, MailboxKey: m, CreatedAt: now, UpdatedAt: now}
					if err := tx.InsertEnrolment(e); err != nil {
						return err
					}
					return tx.Audit(enrol.Event{Actor: fmt.Sprint("node", i), Action: "enrolment.invite", Object: fmt.Sprint("enrolment:", e.ID)})
				})
				switch {
				case err == nil:
					invited[i]++
				case !errors.Is(err, enrol.ErrDuplicate):
					t.Errorf("invite on node %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	if invited[0]+invited[1] != 20 {
		t.Errorf("invited %v, want 20 in all", invited)
	}
	var v audit.Verifier
	if err := nodes[1].AuditEvents(ctx, v.Next); err != nil || v.Count() != 20 {
		t.Errorf("audit chain: %d events, %v; want 20", v.Count(), err)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://mailca@db:5432/mailca", "postgres://mailca@db:5432/mailca"},
		{"postgres://mailca:s3cret@db:5432/mailca?sslmode=require", "postgres://mailca:xxxxx@db:5432/mailca?sslmode=require"},
		{"postgres://mailca@db/mailca?password=s3cret", "postgres://mailca@db/mailca?password=xxxxx"},
		{"host=db user=mailca password=s3cret dbname=mailca", "host=db user=mailca password=xxxxx dbname=mailca"},
		{"postgres://mailca:s3cret@db:bad port/", "(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := postgres.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestOpenErrorsHideThePassword opens URLs that fail, to parse or to
// connect: the error never carries the password.
func TestOpenErrorsHideThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://mailca:s3cret@127.0.0.1:1/mailca?sslmode=disable&connect_timeout=5",
		"postgres://mailca:s3cret@127.0.0.1:notaport/mailca",
		"postgres://mailca@127.0.0.1:1/mailca?password=s3cret&sslmode=disable&connect_timeout=5",
	} {
		db, err := postgres.Open(ctx, url)
		if err == nil {
			db.Close()
			t.Errorf("Open(%s) succeeded", postgres.Redact(url))
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%s) = %v: the error shows the password", postgres.Redact(url), err)
		}
	}
}
