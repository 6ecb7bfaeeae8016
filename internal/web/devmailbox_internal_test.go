package web

import (
	"strings"
	"testing"
)

func TestLinkify(t *testing.T) {
	cases := []struct {
		name, in string
		want     []textPart
	}{
		{"plain", "no link here", []textPart{{Text: "no link here"}}},
		{"trailing dot", "Open https://x.example/e/T. Then", []textPart{{Text: "Open "}, {Text: "https://x.example/e/T", URL: "https://x.example/e/T"}, {Text: ". Then"}}},
		{"parenthesised", "(see http://x.example/a)", []textPart{{Text: "(see "}, {Text: "http://x.example/a", URL: "http://x.example/a"}, {Text: ")"}}},
		{"not http", "javascript:alert(1) ftp://x", []textPart{{Text: "javascript:alert(1) ftp://x"}}},
		{"empty", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := linkify(c.in)
			if len(got) != len(c.want) {
				t.Fatalf("linkify(%q) = %v, want %v", c.in, got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("linkify(%q)[%d] = %v, want %v", c.in, i, got[i], c.want[i])
				}
			}
		})
	}
}

func FuzzLinkify(f *testing.F) {
	for _, s := range []string{"Open https://x.example/e/T. Then", "http://", "a https://b) c", "\x00https://\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b strings.Builder
		for _, p := range linkify(s) {
			b.WriteString(p.Text)
			if p.URL != "" && (p.URL != p.Text || !(strings.HasPrefix(p.URL, "http://") || strings.HasPrefix(p.URL, "https://"))) {
				t.Errorf("linkify(%q): link %q with text %q", s, p.URL, p.Text)
			}
		}
		if b.String() != s {
			t.Errorf("linkify(%q) loses text: %q", s, b.String())
		}
	})
}
