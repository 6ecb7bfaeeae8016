package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web/console"
)

// gateStore holds the transaction numbered at (from 1) until gate is
// closed: an import caught in the middle of a chunk.
type gateStore struct {
	*sqlite.DB
	at   int32
	gate func() <-chan struct{}
	n    atomic.Int32
}

func (s *gateStore) InTx(ctx context.Context, fn func(enrol.Tx) error) error {
	if s.n.Add(1) == s.at {
		<-s.gate()
	}
	return s.DB.InTx(ctx, fn)
}

// TestCloseWaitsForImports: Close waits for a running import, and at its
// deadline stops it between chunks, its batch failed "interrupted by
// shutdown" with the report of the chunks that committed; the spooled
// upload is removed either way.
func TestCloseWaitsForImports(t *testing.T) {
	const rows = 1200 // chunks of 500, 500 and 200
	tests := []struct {
		name     string
		deadline bool // Close's context has ended
		state    string
		rows     int
		errMsg   string
	}{
		{"import finishes", false, "done", rows, ""},
		{"deadline passes", true, "failed", 1000, enrol.ErrShutdown.Msg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spool := filepath.Join(t.TempDir(), "spool")
			var con *console.Console
			gs := &gateStore{at: 3} // 1: the batch, 2: the first chunk
			gs.gate = func() <-chan struct{} {
				if tt.deadline {
					return con.Stopping()
				}
				return con.Closing()
			}
			e := newPagesEnv(t, func(c *console.Config) {
				gs.DB = c.Store.(*sqlite.DB)
				hier := testkit.NewHierarchy(t, keys.ECDSAP256)
				c.Enrol = enrol.NewService(enrol.Config{Store: gs, Issuer: testkit.NewEngine(t, hier, gs.DB), PublicURL: "https://mailca.example", Now: c.Now})
				c.SpoolDir = spool
			})
			con = e.con
			var file strings.Builder
			file.WriteString("email,given name,surname\r\n")
			for i := range rows {
				fmt.Fprintf(&file, "user%d@example.org,Given,Surname\r\n", i)
			}
			res, body := e.upload(e.admin, "staff", "big.csv", file.String())
			wantStatus(t, "upload", res, body, http.StatusSeeOther)
			id, _ := strconv.ParseInt(strings.TrimPrefix(res.Header.Get("Location"), "/console/batches/"), 10, 64)
			files, _ := os.ReadDir(spool)
			if len(files) != 1 {
				t.Fatalf("spool holds %d files during the import, want 1", len(files))
			}
			// Personal data: readable by mailca only.
			if fi, err := os.Stat(spool); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("spool directory mode = %v, %v; want 0700", fi.Mode().Perm(), err)
			}
			if fi, err := files[0].Info(); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("spooled upload mode = %v, %v; want 0600", fi.Mode().Perm(), err)
			}

			ctx, cancel := context.WithCancel(context.Background())
			if tt.deadline {
				cancel()
			}
			con.Close(ctx)
			cancel()
			// Close returned: the import has ended, without waiting here.
			b, err := e.db.Batch(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if b.State != tt.state || b.Rows != tt.rows || b.Invited != tt.rows || b.Error != tt.errMsg {
				t.Errorf("batch after Close = %+v, want %s after %d rows, error %q", b, tt.state, tt.rows, tt.errMsg)
			}
			n := 0
			if err := e.db.ScanBatchRows(context.Background(), id, func(store.BatchRow) error { n++; return nil }); err != nil || n != tt.rows {
				t.Errorf("report has %d lines, %v; want %d", n, err, tt.rows)
			}
			if files, _ := os.ReadDir(spool); len(files) != 0 {
				t.Errorf("spool holds %d files after the import, want none", len(files))
			}
			if tt.deadline {
				_, body := e.get("/console/batches/"+strconv.FormatInt(id, 10), e.admin)
				if !strings.Contains(body, "interrupted by shutdown") {
					t.Errorf("the batch page does not say the import was interrupted:\n%s", body)
				}
			}
			// A closed console starts no import.
			res, body = e.upload(e.admin, "staff", "late.csv", "email\r\nlate@example.org\r\n")
			wantStatus(t, "upload after Close", res, body, http.StatusConflict)
			if files, _ := os.ReadDir(spool); len(files) != 0 {
				t.Errorf("spool holds %d files after a refused upload, want none", len(files))
			}
		})
	}
}

// TestCleanSpool removes the uploads older than the cut-off, and nothing
// else of the directory.
func TestCleanSpool(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := []struct {
		name    string
		age     time.Duration
		removed bool
	}{
		{"upload-1.csv", time.Hour, true},
		{"upload-2.csv", enrol.BatchStall + time.Second, true},
		{"upload-3.csv", time.Second, false},
		{"notes.txt", time.Hour, false},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte("email\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-f.age), now.Add(-f.age)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := console.CleanSpool(dir, now.Add(-enrol.BatchStall))
	if err != nil || n != 2 {
		t.Errorf("CleanSpool = %d, %v; want 2", n, err)
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, f.name))
		if gone := os.IsNotExist(err); gone != f.removed {
			t.Errorf("%s removed = %v, want %v", f.name, gone, f.removed)
		}
	}
	if n, err := console.CleanSpool(filepath.Join(dir, "missing"), now); n != 0 || err != nil {
		t.Errorf("CleanSpool(missing dir) = %d, %v; want 0, nil", n, err)
	}
}
