// Package mailbox parses the email addresses that S/MIME certificates name.
package mailbox

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Limits in octets, as encoded in the certificate.
const (
	maxLocalPart = 64  // RFC 5321 section 4.5.3.1.1
	maxLabel     = 63  // RFC 1035 section 2.3.4
	maxDomain    = 253 // 255 on the wire, less the first length octet and the root label
	maxAddress   = 254 // RFC 5321 caps a path at 256 octets, and that includes "<" and ">"

	// maxInput bounds the work done before the input is understood. It is
	// generous because a U-label domain can take several times more octets
	// than its A-label form, and NFC can shorten a local part.
	maxInput = 4096
)

// domainProfile accepts only domains already in the form IDNA2008 registers:
// it does no UTS #46 mapping, so full-width letters, ignored code points and
// the like are refused rather than quietly rewritten into a different name.
// Parse lower-cases and NFC-normalises before calling it, as those are the
// only changes it makes on the user's behalf. Lengths are checked by Parse so
// that they can be reported as such.
var domainProfile = idna.New(
	idna.ValidateForRegistration(), // STD3 rules, hyphen, joiner and Bidi checks
	idna.Transitional(false),
	idna.VerifyDNSLength(false),
)

// Address is a validated mailbox.
//
// LocalPart is as given, case preserved, because RFC 5321 makes local parts
// case-sensitive; a non-ASCII local part is in Unicode NFC. Domain is in
// lower-case A-label (Punycode) form, so it is always ASCII.
type Address struct {
	LocalPart, Domain string
}

// Parse parses s as one bare mailbox of the kind an S/MIME certificate names:
// a dot-atom local part, "@", and an internet domain name.
//
// Leading and trailing ASCII spaces and tabs are removed. The only other
// changes Parse makes are to normalise a non-ASCII local part to NFC and to
// convert the domain to lower-case A-labels; anything else that is not
// already in that form is refused. In particular, Parse refuses:
//
//   - control characters anywhere, including CR, LF, NUL, U+0080–U+009F,
//     U+2028, U+2029 and the bidirectional controls, so a line terminator
//     left on a line of input is an error, not something to trim;
//   - display names, angle brackets, comments and lists of addresses;
//   - quoted-string local parts, which are legal mail syntax but which mail
//     clients do not match reliably against certificates;
//   - IP-literal domains, bracketed or bare, which S/MIME certificates may
//     not contain, and domains that are not at least two labels with a
//     non-numeric top label;
//   - domains that UTS #46 would map to something else by more than case
//     and NFC, such as full-width letters, U+3002 IDEOGRAPHIC FULL STOP or
//     U+00AD SOFT HYPHEN, since the user would not recognise the result.
//
// A non-ASCII local part may hold letters, digits and combining marks besides
// the ASCII atext characters of RFC 5322. A domain must be valid under
// IDNA2008 and its Bidi rule, with labels of letters, digits and marks.
//
// The returned error is always an *Error.
func Parse(s string) (Address, error) {
	fail := func(r Reason) (Address, error) {
		return Address{}, &Error{Input: s, Reason: r}
	}

	t := strings.Trim(s, " \t")
	if t == "" {
		return fail(Empty)
	}
	// Control characters come first because they are the mark of an
	// injection attempt, which is worth telling apart from a typing error.
	if strings.IndexFunc(t, isControl) >= 0 {
		return fail(ControlCharacter)
	}
	if !utf8.ValidString(t) {
		return fail(InvalidUTF8)
	}
	if len(t) > maxInput {
		return fail(TooLong)
	}

	// The order matters: a display name may be quoted and hold commas, and
	// a quoted local part may hold "@".
	if strings.ContainsAny(t, "<>()") {
		return fail(DisplayName)
	}
	if t[0] == '"' {
		return fail(QuotedLocalPart)
	}
	ats := strings.Count(t, "@")
	if strings.ContainsAny(t, ",;") || ats > 1 && strings.IndexFunc(t, unicode.IsSpace) >= 0 {
		return fail(MultipleAddresses)
	}
	switch {
	case ats == 0:
		return fail(NoAt)
	case ats > 1:
		return fail(MultipleAt)
	}
	local, domain, _ := strings.Cut(t, "@")

	local = norm.NFC.String(local)
	if len(local) > maxLocalPart {
		return fail(LocalPartTooLong)
	}
	if !isDotAtom(local) {
		return fail(LocalPartInvalid)
	}

	domain, r, ok := parseDomain(domain)
	if !ok {
		return fail(r)
	}
	if len(local)+1+len(domain) > maxAddress {
		return fail(TooLong)
	}
	return Address{LocalPart: local, Domain: domain}, nil
}

// parseDomain returns d as lower-case A-labels, or why it cannot.
func parseDomain(d string) (a string, r Reason, ok bool) {
	if d == "" {
		return "", DomainInvalid, false
	}
	// Bare addresses are caught too, as "a@192.0.2.1" means the same to a
	// user as "a@[192.0.2.1]".
	if d[0] == '[' || d[len(d)-1] == ']' {
		return "", IPLiteral, false
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return "", IPLiteral, false
	}
	// A trailing dot is legal in DNS but not in a mailbox (RFC 5321 section
	// 4.1.2), and a certificate must name the domain one way only.
	if strings.HasSuffix(d, ".") {
		return "", DomainInvalid, false
	}
	d = norm.NFC.String(strings.ToLower(d))
	// Punycode encoding takes time quadratic in the label length, so refuse
	// what is bound to end up too long first: every rune of a label costs
	// at least one octet of its A-label.
	if utf8.RuneCountInString(d) > maxDomain {
		return "", DomainTooLong, false
	}
	for l := range strings.SplitSeq(d, ".") {
		if utf8.RuneCountInString(l) > maxLabel {
			return "", DomainTooLong, false
		}
	}
	a, err := domainProfile.ToASCII(d)
	if err != nil {
		return "", DomainInvalid, false
	}
	if u, err := idna.Punycode.ToUnicode(a); err != nil || strings.IndexFunc(u, disallowed) >= 0 {
		return "", DomainInvalid, false
	}
	if len(a) > maxDomain {
		return "", DomainTooLong, false
	}
	labels := strings.Split(a, ".")
	if len(labels) < 2 {
		return "", DomainInvalid, false
	}
	for _, l := range labels {
		if len(l) > maxLabel {
			return "", DomainTooLong, false
		}
		if !isLDH(l) {
			return "", DomainInvalid, false
		}
	}
	// An all-numeric top label would make the name look like an IPv4
	// address to some software (RFC 3696 section 2).
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", DomainInvalid, false
	}
	return a, 0, true
}

// disallowed reports whether IDNA2008 (RFC 5892) forbids r in a U-label,
// approximately: it allows lower-case letters, other letters, digits and
// marks, and its exceptions. The UTS #46 tables in x/net/idna let through
// symbols such as U+2665 BLACK HEART SUIT that IDNA2008 disallows. Runes with
// contextual rules that x/net/idna does not check (RFC 5892 appendix A.3 to
// A.7, such as U+00B7 MIDDLE DOT) are refused outright, as they are rare.
// Upper-case letters cannot reach here: Parse lower-cases first, and the
// profile refuses them in A-labels.
func disallowed(r rune) bool {
	if r < utf8.RuneSelf {
		return false // the profile has already held ASCII to LDH
	}
	switch r {
	case 0x0640, 0x07FA, 0x302E, 0x302F, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303B:
		return true // RFC 5892 section 2.6, DISALLOWED exceptions
	case 0x06FD, 0x06FE, 0x0F0B, 0x3007:
		return false // PVALID exceptions
	case 0x200C, 0x200D:
		return false // CONTEXTJ, which the profile checks
	}
	return !unicode.In(r, unicode.Ll, unicode.Lo, unicode.Lm, unicode.Mn, unicode.Mc, unicode.Nd)
}

// isLDH reports whether l is a lower-case letter-digit-hyphen label that
// neither starts nor ends with a hyphen. The IDNA profile has already checked
// this; checking again costs little and guards what goes into a certificate.
func isLDH(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isDotAtom reports whether s is an RFC 5322 dot-atom, with atext extended
// beyond ASCII to letters, digits and combining marks.
func isDotAtom(s string) bool {
	atomStart := true
	prevBase := false // whether a combining mark may follow
	for _, r := range s {
		switch {
		case r == '.':
			if atomStart {
				return false // leading or doubled dot
			}
			atomStart, prevBase = true, false
			continue
		case r < utf8.RuneSelf:
			if !isAtext(byte(r)) {
				return false
			}
			prevBase = 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			prevBase = true
		case unicode.IsMark(r):
			// A mark with nothing to combine with would be drawn over a dot,
			// a symbol or the "@", making the address hard to read back.
			if !prevBase {
				return false
			}
		default:
			return false
		}
		atomStart = false
	}
	return !atomStart // empty, or a trailing dot
}

func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isControl reports whether r must never appear in an address. Besides the C0
// and C1 controls it covers the Unicode line and paragraph separators, which
// some software treats as line breaks, and the bidirectional controls, which
// can make an address display as a different one.
func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		unicode.Is(unicode.Bidi_Control, r)
}

// String returns the address as LocalPart@Domain. The domain is always in
// A-label form, so the result is ASCII exactly when a.IsASCII reports true.
func (a Address) String() string {
	return a.LocalPart + "@" + a.Domain
}

// IsASCII reports whether the local part is ASCII, that is, whether the
// address fits an rfc822Name subject alternative name. When it is false the
// certificate needs an SmtpUTF8Mailbox otherName instead (RFC 9598).
func (a Address) IsASCII() bool {
	for i := 0; i < len(a.LocalPart); i++ {
		if a.LocalPart[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Key returns a canonical form of a for spotting the same person entered
// twice: the local part under Unicode simple case folding, then "@" and the
// domain. Although RFC 5321 lets a server tell "Alice" from "alice", almost
// none do, and two certificates for one mailbox are the likelier mistake.
// Key does not fold provider conventions such as "+tag" or dots, since those
// name different mailboxes as far as anyone outside the provider knows.
func (a Address) Key() string {
	var b strings.Builder
	b.Grow(len(a.LocalPart) + 1 + len(a.Domain))
	for _, r := range a.LocalPart {
		b.WriteRune(fold(r))
	}
	b.WriteByte('@')
	b.WriteString(strings.ToLower(a.Domain))
	return b.String()
}

// fold maps every rune of one simple case folding orbit, such as
// {K, k, U+212A KELVIN SIGN}, to the same lower-case rune. It lower-cases the
// orbit's smallest member rather than r itself because unicode.ToLower alone
// leaves some members apart, such as final sigma.
func fold(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return unicode.ToLower(least)
}
