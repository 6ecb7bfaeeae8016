package csvbatch_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mailca/mailca/internal/csvbatch"
	"github.com/mailca/mailca/internal/mailbox"
)

// generator produces a batch of n rows as it is read, so that the test
// itself holds no more than one row of it.
type generator struct {
	n, next int
	notes   string
	buf     []byte
	size    int64
}

func (g *generator) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		switch {
		case g.next > g.n:
			return 0, io.EOF
		case g.next == 0:
			g.buf = append(g.buf[:0], "Email,First Name,Last Name,Department,Notes\r\n"...)
		default:
			g.buf = fmt.Appendf(g.buf[:0], "user%d@example.com,Given%d,Surname,Dept %d,\"%s\"\r\n", g.next, g.next, g.next%50, g.notes)
		}
		g.next++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	g.size += int64(n)
	return n, nil
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryFlat reads a file several times larger than the memory bound
// and checks that the live heap stays under it while reading.
func TestMemoryFlat(t *testing.T) {
	const (
		rows  = 100_000
		bound = 16 << 20
	)
	// The notes make the file about 50 MB, so that holding it would show.
	g := &generator{n: rows, notes: strings.Repeat("lorem ipsum, ", 35)}
	before := liveHeap()
	r, err := csvbatch.NewReader(g, csvbatch.Options{})
	if err != nil {
		t.Fatalf("NewReader error = %v", err)
	}
	var n int
	var peak uint64
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next error = %v", err)
		}
		if row.Problem != nil {
			t.Fatalf("row on line %d: %v", row.Line, row.Problem)
		}
		n++
		if n%10_000 == 0 {
			peak = max(peak, liveHeap())
		}
	}
	after := liveHeap()
	peak = max(peak, after)
	runtime.KeepAlive(r)
	if n != rows {
		t.Errorf("read %d rows, want %d", n, rows)
	}
	if g.size < 3*bound {
		t.Fatalf("generated only %d octets; the test needs a file much larger than %d", g.size, bound)
	}
	growth := int64(peak) - int64(before)
	t.Logf("read %d rows, %d octets; live heap grew by at most %d octets", n, g.size, growth)
	if growth > bound {
		t.Errorf("live heap grew by %d octets reading %d octets, want at most %d", growth, g.size, bound)
	}
}

// BenchmarkRead100k reads a typical 100,000-row batch from memory.
func BenchmarkRead100k(b *testing.B) {
	const rows = 100_000
	data, err := io.ReadAll(&generator{n: rows, notes: "new starter"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := csvbatch.NewReader(bytes.NewReader(data), csvbatch.Options{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			row, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil || row.Problem != nil {
				b.Fatalf("Next() = %v, %v", row.Problem, err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"email,given name,surname\nalice@example.com,Alice,Smith\n",
		"\uFEFFE-Mail;Vorname;Nachname\r\njörg@bücher.example;Jörg;Müller\r\n",
		"sep=\t\nemail\tnotes\n\"a@b.example\"\t\"x\"\"y\nz\"\n",
		"email,given name\n\"alice@example.com\"x,Alice\nb\"ob@example.com,Bob\n",
		"email,given name\nalice@example.com,\"Alice\nbob@example.com,Bob\ncarol@example.com,\"Carol\"\n",
		"email,given name\nalice@example.com,\"Eve\r\nBcc: x@y\"\nALICE@example.com,A\n alice@example.com ,B\n",
		"email,n\n\n\r\n,\n\"\",\"\"\na@b.example,\xF6\n=1+1@x.example,x\r",
		"email,notes\nbob@example.com,\"" + strings.Repeat("x", 40) + "\"\n",
		"\xFF\xFEe\x00",
		"email\rname\r",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, small bool) {
		var opts csvbatch.Options
		if small {
			opts.MaxRecordBytes = 32
		}
		r, err := csvbatch.NewReader(bytes.NewReader(data), opts)
		if err != nil {
			var e *csvbatch.Error
			if !errors.As(err, &e) {
				t.Fatalf("NewReader error %v is not an *Error", err)
			}
			checkSafe(t, "error", err.Error())
			return
		}
		var report bytes.Buffer
		w := csvbatch.NewReportWriter(&report)
		lastLine := 0
		// Every call to Next but the last consumes at least one octet.
		for calls := 0; ; calls++ {
			if calls > len(data)+1 {
				t.Fatalf("Next has not ended after %d calls on %d octets", calls, len(data))
			}
			row, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var e *csvbatch.Error
				if !errors.As(err, &e) || !errors.Is(err, csvbatch.ErrUnclosedQuote) {
					t.Fatalf("Next error = %v, want io.EOF or ErrUnclosedQuote", err)
				}
				checkSafe(t, "error", err.Error())
				break
			}
			if row.Line <= lastLine {
				t.Fatalf("row on line %d after one on line %d", row.Line, lastLine)
			}
			lastLine = row.Line
			outcome, reason := "invited", ""
			if p := row.Problem; p != nil {
				if p.Reason < csvbatch.Malformed || p.Reason > csvbatch.InvalidName {
					t.Fatalf("row on line %d: reason %v", row.Line, p.Reason)
				}
				checkSafe(t, "problem", p.Error())
				outcome, reason = "rejected", p.Error()
			} else {
				a, err := mailbox.Parse(row.Email.String())
				if err != nil || a != row.Email || row.Email.LocalPart == "" {
					t.Fatalf("row on line %d: Email %q is not valid: %v", row.Line, row.Email, err)
				}
				for _, s := range []string{row.GivenName, row.Surname} {
					if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
						t.Fatalf("row on line %d: name %q", row.Line, s)
					}
				}
				for k, v := range row.Fields {
					if !utf8.ValidString(k) || !utf8.ValidString(v) {
						t.Fatalf("row on line %d: field %q: %q is not UTF-8", row.Line, k, v)
					}
				}
			}
			if err := w.Write(row.Line, row.RawEmail, outcome, reason); err != nil {
				t.Fatal(err)
			}
		}
		if n := csvbatch.Desyncs(r); n != 0 {
			t.Fatalf("framer and csv.Reader disagreed on %d records", n)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, rec := range readReport(t, report.Bytes()) {
			for _, c := range rec {
				checkSafe(t, "report cell", c)
				if c != "" && strings.IndexByte("=+-@\t\r", c[0]) >= 0 {
					t.Fatalf("report cell %q starts with a formula character", c)
				}
			}
		}
	})
}

// checkSafe fails the test if s, meant to be shown to a person, is not
// UTF-8 or holds a control character.
func checkSafe(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		t.Fatalf("%s %q is not safe to show", what, s)
	}
}
