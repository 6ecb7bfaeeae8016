package p12_test

import (
	"math"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/p12"
)

// alphabet is the 32 symbols NewPassword promises: no 0, 1, l or o.
const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"

func TestNewPassword(t *testing.T) {
	seen := make(map[rune]bool)
	passwords := make(map[string]bool)
	const n = 200
	for range n {
		pw, err := p12.NewPassword()
		if err != nil {
			t.Fatalf("NewPassword error: %v", err)
		}
		groups := strings.Split(pw, "-")
		if len(groups) != 6 {
			t.Fatalf("NewPassword() = %q, want six dash-separated groups", pw)
		}
		for _, g := range groups {
			if len(g) != 4 {
				t.Fatalf("NewPassword() = %q, want groups of four", pw)
			}
			for _, r := range g {
				if !strings.ContainsRune(alphabet, r) {
					t.Fatalf("NewPassword() = %q has %q, outside %q", pw, r, alphabet)
				}
				seen[r] = true
			}
		}
		passwords[pw] = true
	}
	if bits := 24 * math.Log2(float64(len(alphabet))); bits < 112 {
		t.Errorf("24 symbols from %d carry %.0f bits, want at least 112", len(alphabet), bits)
	}
	// 200 passwords of 24 symbols draw 4800 times from 32 symbols: a
	// generator that never yields some symbol carries fewer bits than the
	// count above claims.
	if len(seen) != len(alphabet) {
		t.Errorf("NewPassword used %d distinct symbols, want all %d", len(seen), len(alphabet))
	}
	if len(passwords) != n {
		t.Errorf("NewPassword returned %d distinct passwords in %d calls", len(passwords), n)
	}
}
