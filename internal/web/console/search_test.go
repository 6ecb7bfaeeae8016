package console_test

import (
	"testing"

	"github.com/mailca/mailca/internal/web/console"
)

// TestParseSearch checks that every list reads a search the same way: what
// has a character names lack is a mailbox, the rest names; a serial is
// recognised besides.
func TestParseSearch(t *testing.T) {
	tests := []struct {
		typed                           string
		mailbox, serial, surname, given string
	}{
		{"", "", "", "", ""},
		{"  ", "", "", "", ""},
		{"ida.okafor", "ida.okafor", "", "", ""},
		{"Ida.Okafor@Example.org", "Ida.Okafor@Example.org", "", "", ""},
		{"p05", "p05", "", "", ""},
		{"Okafor", "", "", "Okafor", ""},
		{"Ida Okafor", "", "", "Okafor", "Ida"},
		{" Ida  Maria Ödegaard ", "", "", "Ödegaard", "Ida Maria"},
		{"1f:2e:3d:4c", "1f:2e:3d:4c", "1f2e3d4c", "", ""},
		{"00DEADBEEF", "00DEADBEEF", "deadbeef", "", ""},
		{"deadbeefcafe", "", "deadbeefcafe", "deadbeefcafe", ""},
		{"1f2e3d4", "1f2e3d4", "", "", ""},
	}
	for _, tt := range tests {
		m, s, sn, g := console.ParseSearch(tt.typed)
		if m != tt.mailbox || s != tt.serial || sn != tt.surname || g != tt.given {
			t.Errorf("ParseSearch(%q) = mailbox %q, serial %q, surname %q, given %q; want %q, %q, %q, %q",
				tt.typed, m, s, sn, g, tt.mailbox, tt.serial, tt.surname, tt.given)
		}
	}
}
