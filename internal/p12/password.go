package p12

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// passwordAlphabet has 32 symbols, so each carries 5 bits, and leaves out
// the ones people confuse when reading aloud or typing: 0/o, 1/l.
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyz23456789"

var passwordEncoding = base32.NewEncoding(passwordAlphabet).WithPadding(base32.NoPadding)

// NewPassword returns a random password for Encode: 24 lowercase symbols
// from crypto/rand, 120 bits in all, in six dash-separated groups of four,
// such as "7kqm-x3ta-9pzd-hh2e-rwcu-b4ny".
func NewPassword() (string, error) {
	var b [15]byte // 15 bytes encode to exactly 24 symbols
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("p12: %w", err)
	}
	s := passwordEncoding.EncodeToString(b[:])
	groups := make([]string, 0, len(s)/4)
	for len(s) > 0 {
		groups = append(groups, s[:4])
		s = s[4:]
	}
	return strings.Join(groups, "-"), nil
}
