package csvbatch_test

import (
	"fmt"
	"testing"

	"github.com/mailca/mailca/internal/csvbatch"
)

func TestSafeCell(t *testing.T) {
	long := string(make([]byte, 300))
	tests := []struct{ in, want string }{
		{"", ""},
		{"ann@example.com", "ann@example.com"},
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"+1", "'+1"},
		{"-bob@example.com", "'-bob@example.com"},
		{"@SUM(1)", "'@SUM(1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=1", "a=1"},
		{"'quoted", "'quoted"},
		{"line\nbreak", "line\nbreak"}, // kept: an export keeps every character
		{long, long},                   // and is not shortened
	}
	for _, tt := range tests {
		if got := csvbatch.SafeCell(tt.in); got != tt.want {
			t.Errorf("SafeCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func ExampleSafeCell() {
	fmt.Println(csvbatch.SafeCell("=HYPERLINK(\"http://evil.example\")"))
	fmt.Println(csvbatch.SafeCell("alice@example.com"))
	// Output:
	// '=HYPERLINK("http://evil.example")
	// alice@example.com
}
