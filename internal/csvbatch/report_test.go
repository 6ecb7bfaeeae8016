package csvbatch_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/csvbatch"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"jörg@bücher.example", "jörg@bücher.example"},
		{"", ""},
		{"a\r\nBcc: x@y", `a\r\nBcc: x@y`},
		{"tab\there", `tab\there`},
		{"nul\x00", `nul\u0000`},
		{"c1\u0085", `c1\u0085`},
		{"bidi\u202Efdp.exe", `bidi\u202Efdp.exe`},
		{"line\u2028sep", `line\u2028sep`},
		{"latin1 \xE4", `latin1 \xE4`},
		{`back\slash`, `back\\slash`},
		{strings.Repeat("a", 300), strings.Repeat("a", 256) + "..."},
		{strings.Repeat("ä", 200), strings.Repeat("ä", 128) + "..."},
		{strings.Repeat("\x00", 100), strings.Repeat(`\u0000`, 42) + "..."},
	}
	for _, tt := range tests {
		if got := csvbatch.Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// readReport parses a report, checking its byte order mark and header.
func readReport(t *testing.T, b []byte) [][]string {
	t.Helper()
	rest, ok := bytes.CutPrefix(b, []byte("\uFEFF"))
	if !ok {
		t.Fatalf("report %q does not start with a byte order mark", b)
	}
	if !bytes.HasPrefix(rest, []byte("line,email,outcome,reason\r\n")) {
		t.Fatalf("report %q does not start with the header line", b)
	}
	records, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatalf("reading report %q: %v", b, err)
	}
	return records[1:]
}

func TestReportWriter(t *testing.T) {
	tests := []struct {
		line                   int
		email, outcome, reason string
		want                   []string
	}{
		{2, "alice@example.com", "invited", "", []string{"2", "alice@example.com", "invited", ""}},
		{3, "=HYPERLINK(\"http://x\",\"y\")", "rejected", "invalid mailbox", []string{"3", "'=HYPERLINK(\"http://x\",\"y\")", "rejected", "invalid mailbox"}},
		{4, "+1", "-x", "@SUM(A1)", []string{"4", "'+1", "'-x", "'@SUM(A1)"}},
		{5, "-bob@example.com", "rejected", "duplicate in file", []string{"5", "'-bob@example.com", "rejected", "duplicate in file"}},
		{6, "\t=1", "\r=1", "a,b\n\"c\"", []string{"6", `\t=1`, `\r=1`, `a,b\n"c"`}},
		{7, "a@b\r\nBcc: c@d", "rejected", "x", []string{"7", `a@b\r\nBcc: c@d`, "rejected", "x"}},
		{0, "", "aborted", "csvbatch: quoted field not closed", []string{"", "", "aborted", "csvbatch: quoted field not closed"}},
	}
	var b bytes.Buffer
	w := csvbatch.NewReportWriter(&b)
	for _, tt := range tests {
		if err := w.Write(tt.line, tt.email, tt.outcome, tt.reason); err != nil {
			t.Fatalf("Write error = %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush error = %v", err)
	}
	if !bytes.Contains(b.Bytes(), []byte("\r\n2,alice@example.com,invited,\r\n")) {
		t.Errorf("report %q does not have CR LF line endings", b.Bytes())
	}
	got := readReport(t, b.Bytes())
	if len(got) != len(tests) {
		t.Fatalf("report has %d lines, want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		if !equalStrings(got[i], tt.want) {
			t.Errorf("Write(%d, %q, %q, %q) wrote %q, want %q", tt.line, tt.email, tt.outcome, tt.reason, got[i], tt.want)
		}
	}
}

func TestReportWriterEmpty(t *testing.T) {
	var b bytes.Buffer
	w := csvbatch.NewReportWriter(&b)
	if b.Len() != 0 {
		t.Errorf("NewReportWriter wrote %q, want nothing", b.Bytes())
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush error = %v", err)
	}
	if got := readReport(t, b.Bytes()); len(got) != 0 {
		t.Errorf("empty report has lines %q", got)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestReportWriterError(t *testing.T) {
	errFull := errors.New("disk full")
	w := csvbatch.NewReportWriter(failingWriter{errFull})
	err := w.Write(2, "alice@example.com", "invited", "")
	if err == nil {
		err = w.Flush()
	}
	if !errors.Is(err, errFull) {
		t.Errorf("Write and Flush error = %v, want %v", err, errFull)
	}
}
