package ca

import (
	"fmt"
	"io"
	"math/big"
)

// serialBytes is the length of a serial number in octets. With the top bit
// cleared a serial is positive, below 2^159 and fits RFC 5280's 20 octets,
// and it carries 159 random bits, far above the BR's minimum of 64.
const serialBytes = 20

// newSerial returns a random positive serial number below 2^159.
func newSerial(rand io.Reader) (*big.Int, error) {
	for {
		b := make([]byte, serialBytes)
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, fmt.Errorf("ca: reading random serial: %w", err)
		}
		b[0] &= 0x7f
		s := new(big.Int).SetBytes(b)
		// A serial with fewer than 64 significant random bits is possible
		// only by astonishing luck; draw again rather than argue.
		if s.BitLen() > 64 {
			return s, nil
		}
	}
}

// SerialHex formats a serial the way mailca stores and shows it: lower-case
// hexadecimal without leading zeros or separators.
func SerialHex(s *big.Int) string { return s.Text(16) }

// ParseSerial parses a serial written in hexadecimal, with or without
// colons (the form openssl prints).
func ParseSerial(s string) (*big.Int, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			clean = append(clean, s[i])
		}
	}
	n, ok := new(big.Int).SetString(string(clean), 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("ca: invalid serial number %q: want hexadecimal", s)
	}
	return n, nil
}
