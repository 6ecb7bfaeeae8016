package enrol_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/testkit"
)

func TestInviteCSV(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) { p.AllowedDomains = []string{"example.com"} })
	ctx := context.Background()
	file := "\ufeffE-Mail;First Name;Last Name;Department\r\n" +
		"ann@example.com;Ann;Smith;Sales\r\n" +
		"not-a-mailbox;Bad;Row;X\r\n" +
		"ANN@example.com;Ann;Again;Sales\r\n" +
		"\"eve@example.com\";\"Eve\r\nBcc: x@example.com\";E;X\r\n" +
		"out@elsewhere.org;Out;Side;X\r\n" +
		"bob@example.com;Bob;\"Jones; Jr\";\"R&D\"\r\n" +
		"short@example.com\r\n"
	var got []enrol.RowResult
	b, err := f.svc.InviteCSV(ctx, "admin:root", "staff", "staff.csv", strings.NewReader(file), func(r enrol.RowResult) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("InviteCSV: %v", err)
	}
	want := []struct {
		line   int
		reason string
	}{{2, ""}, {3, "invalid mailbox"}, {4, "duplicate in file"}, {5, "invalid name"}, {7, "domain not allowed"}, {8, ""}, {9, "malformed row"}}
	if len(got) != len(want) {
		t.Fatalf("report has %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Line != w.line || got[i].Reason != w.reason || got[i].Invited != (w.reason == "") {
			t.Errorf("row %d = %+v, want line %d reason %q", i, got[i], w.line, w.reason)
		}
	}
	if b.State != "done" || b.Rows != 7 || b.Invited != 2 || b.Refused != 5 {
		t.Errorf("batch = %+v", b)
	}
	// The stored report is the one reported, line for line.
	i := 0
	err = f.db.ScanBatchRows(ctx, b.ID, func(r store.BatchRow) error {
		if i >= len(got) || r.Line != got[i].Line || r.Invited != got[i].Invited || r.EnrolmentID != got[i].EnrolmentID || r.Reason != got[i].Reason {
			t.Errorf("stored report line %d = %+v, want %+v", i, r, got[min(i, len(got)-1)])
		}
		i++
		return nil
	})
	if err != nil || i != len(got) {
		t.Errorf("stored report: %d lines, %v; want %d", i, err, len(got))
	}
	bob, _ := f.svc.Enrolment(ctx, got[5].EnrolmentID)
	if bob.Surname != "Jones; Jr" || bob.Fields["department"] != "R&D" || bob.BatchID != b.ID {
		t.Errorf("bob = %+v", bob)
	}

	// The same file again invites nobody twice.
	var again []enrol.RowResult
	b2, err := f.svc.InviteCSV(ctx, "admin:root", "staff", "staff.csv", strings.NewReader(file), func(r enrol.RowResult) error {
		again = append(again, r)
		return nil
	})
	if err != nil || b2.Invited != 0 {
		t.Fatalf("second upload: %+v, %v", b2, err)
	}
	if again[0].Reason != "already invited or active" || again[5].Reason != "already invited or active" {
		t.Errorf("second upload report = %+v", again)
	}
	msgs, _ := f.db.Messages(ctx, outbox.Filter{Limit: 1000})
	if len(msgs) != 2 {
		t.Errorf("%d invitation emails, want 2", len(msgs))
	}
}

func TestInviteCSVRefusesFileWithoutEmailColumn(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.svc.InviteCSV(context.Background(), "cli", "staff", "x.csv", strings.NewReader("name,phone\nann,123\n"), func(enrol.RowResult) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "email") {
		t.Errorf("InviteCSV without an email column = %v", err)
	}
}

// csvGenerator streams a CSV of n distinct rows without holding it in memory.
type csvGenerator struct {
	n, i int
	buf  []byte
}

func (g *csvGenerator) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i <= g.n {
		if g.i == 0 {
			g.buf = append(g.buf, "email,given name,surname\n"...)
		} else {
			g.buf = fmt.Appendf(g.buf, "user%07d@example.com,Given%d,Surname%d\n", g.i, g.i, g.i)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// BenchmarkInviteCSV imports 100,000 rows per iteration into the embedded
// SQLite store: parse, validate, store enrolment, link, outbox email and
// audit event. It reports rows/s and the peak heap, which must stay flat
// in the file size.
func BenchmarkInviteCSV(b *testing.B) {
	rows := 100_000
	if testing.Short() {
		rows = 2_000
	}
	if v, err := strconv.Atoi(os.Getenv("MAILCA_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	db := testkit.MustOpenDB(b)
	h := testkit.NewHierarchy(b, keys.ECDSAP256)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(b, h, db), PublicURL: "https://certs.example.com"})
	ctx := context.Background()
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := enrol.DefaultPolicy()
		p.Name = fmt.Sprintf("bench%d", i) // a fresh policy: every row is new
		if _, err := svc.SavePolicy(ctx, "bench", p); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n := 0
		_, err := svc.InviteCSV(ctx, "bench", p.Name, "gen.csv", &csvGenerator{n: rows}, func(r enrol.RowResult) error {
			if !r.Invited {
				return fmt.Errorf("row %d refused: %s", r.Line, r.Reason)
			}
			n++
			if n%10_000 == 0 {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			return nil
		})
		if err != nil || n != rows {
			b.Fatalf("InviteCSV: %d rows, %v", n, err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

func TestBatchStalled(t *testing.T) {
	start := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		b       enrol.Batch
		now     time.Time
		stalled bool
	}{
		{"just started", enrol.Batch{State: "importing", CreatedAt: start}, start.Add(time.Minute), false},
		{"silent since it started", enrol.Batch{State: "importing", CreatedAt: start}, start.Add(enrol.BatchStall + time.Second), true},
		{"committed a moment ago", enrol.Batch{State: "importing", CreatedAt: start, UpdatedAt: start.Add(10 * time.Minute)}, start.Add(11 * time.Minute), false},
		{"silent since its last chunk", enrol.Batch{State: "importing", CreatedAt: start, UpdatedAt: start.Add(time.Minute)}, start.Add(time.Minute + enrol.BatchStall + time.Second), true},
		{"done long ago", enrol.Batch{State: "done", CreatedAt: start, UpdatedAt: start}, start.Add(24 * time.Hour), false},
		{"failed long ago", enrol.Batch{State: "failed", CreatedAt: start}, start.Add(24 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Stalled(tt.now); got != tt.stalled {
				t.Errorf("Stalled(%v) = %v, want %v", tt.now, got, tt.stalled)
			}
		})
	}
}
