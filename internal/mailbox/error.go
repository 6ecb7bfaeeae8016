package mailbox

import (
	"strconv"
	"unicode/utf8"
)

// Reason says why Parse refused an address.
type Reason int

const (
	// Empty means the input held nothing but spaces and tabs.
	Empty Reason = iota
	// ControlCharacter means the input held a C0 or C1 control character
	// (CR, LF, NUL, tab inside the address, DEL, U+0080–U+009F and so on), a
	// Unicode line or paragraph separator, or a bidirectional control.
	// These are how header injection is attempted.
	ControlCharacter
	// InvalidUTF8 means the input was not UTF-8, as happens with a CSV file
	// saved in a legacy encoding.
	InvalidUTF8
	// TooLong means the address is longer than the 254 octets RFC 5321
	// allows, or the input is too long to be worth examining.
	TooLong
	// DisplayName means the input had text around the address: a display
	// name, angle brackets or a comment, as in "Alice <alice@example.com>".
	DisplayName
	// MultipleAddresses means the input looked like a list of addresses,
	// separated by commas, semicolons or spaces.
	MultipleAddresses
	// NoAt means the input had no "@".
	NoAt
	// MultipleAt means the input had more than one "@".
	MultipleAt
	// QuotedLocalPart means the local part was a quoted string, such as
	// "\"john doe\"@example.com". RFC 5321 allows it, but mail clients do
	// not reliably match such an address against a certificate.
	QuotedLocalPart
	// LocalPartInvalid means the local part was empty or not a dot-atom: a
	// character outside atext, letters, digits and marks, or a leading,
	// trailing or doubled dot.
	LocalPartInvalid
	// LocalPartTooLong means the local part is longer than 64 octets.
	LocalPartTooLong
	// DomainInvalid means the domain was empty, ended with a dot, had fewer
	// than two labels or an all-numeric top label, or was not a valid IDNA2008
	// domain name.
	DomainInvalid
	// DomainTooLong means the domain, as A-labels, is longer than 253 octets
	// or has a label longer than 63.
	DomainTooLong
	// IPLiteral means the domain was an IP address, bracketed or not, which
	// the S/MIME Baseline Requirements do not allow in a certificate.
	IPLiteral
)

var reasons = [...]struct{ name, text string }{
	Empty:             {"Empty", "address is empty"},
	ControlCharacter:  {"ControlCharacter", "address contains a control character"},
	InvalidUTF8:       {"InvalidUTF8", "address is not valid UTF-8"},
	TooLong:           {"TooLong", "address is longer than 254 octets"},
	DisplayName:       {"DisplayName", "address has a name or comment around it"},
	MultipleAddresses: {"MultipleAddresses", "input holds more than one address"},
	NoAt:              {"NoAt", "address has no @"},
	MultipleAt:        {"MultipleAt", "address has more than one @"},
	QuotedLocalPart:   {"QuotedLocalPart", "quoted local parts are not supported"},
	LocalPartInvalid:  {"LocalPartInvalid", "part before the @ is not valid"},
	LocalPartTooLong:  {"LocalPartTooLong", "part before the @ is longer than 64 octets"},
	DomainInvalid:     {"DomainInvalid", "domain is not a valid internet domain name"},
	DomainTooLong:     {"DomainTooLong", "domain is too long"},
	IPLiteral:         {"IPLiteral", "domain is an IP address, which certificates cannot name"},
}

// String returns the constant's name, for logs.
func (r Reason) String() string {
	if r < 0 || int(r) >= len(reasons) {
		return "Reason(" + strconv.Itoa(int(r)) + ")"
	}
	return reasons[r].name
}

// Error is the error Parse returns.
type Error struct {
	// Input is the string given to Parse, unchanged. It may hold control
	// characters and be of any length: show Error() rather than Input.
	Input string
	// Reason says what was wrong, for callers that act on it.
	Reason Reason
}

// maxShown bounds the quoted input in an error message, so that a megabyte
// of hostile input does not end up in a page or a log line.
const maxShown = 100

// Error describes the problem and quotes the input with strconv.Quote,
// shortened if long, so that it is safe to show to a user: control and
// bidirectional characters and invalid UTF-8 appear escaped, never raw.
func (e *Error) Error() string {
	var text string
	if e.Reason >= 0 && int(e.Reason) < len(reasons) {
		text = reasons[e.Reason].text
	} else {
		text = "invalid address (" + e.Reason.String() + ")"
	}
	return "mailbox: parsing " + quote(e.Input) + ": " + text
}

// quote returns s quoted, cut on a rune boundary to at most maxShown octets
// plus an ellipsis.
func quote(s string) string {
	if len(s)+2 <= maxShown {
		if q := strconv.Quote(s); len(q) <= maxShown {
			return q
		}
	}
	// An escape can take ten octets, so the cut is found by trial.
	n := 0
	for n < len(s) {
		_, size := utf8.DecodeRuneInString(s[n:])
		if len(strconv.Quote(s[:n+size])) > maxShown {
			break
		}
		n += size
	}
	return strconv.Quote(s[:n]) + "..."
}
