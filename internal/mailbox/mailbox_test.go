package mailbox_test

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mailca/mailca/internal/mailbox"
)

var validTests = []struct {
	name  string
	in    string
	want  mailbox.Address
	ascii bool
}{
	{"simple", "alice@example.com", mailbox.Address{"alice", "example.com"}, true},
	{"case", "Alice.Smith+tag@Example.COM", mailbox.Address{"Alice.Smith+tag", "example.com"}, true},
	{"trimmed", " \tbob@example.org \t", mailbox.Address{"bob", "example.org"}, true},
	{"all atext", "!#$%&'*+-/=?^_`{|}~@example.com", mailbox.Address{"!#$%&'*+-/=?^_`{|}~", "example.com"}, true},
	{"digits and hyphens", "a1@my-host.123.example", mailbox.Address{"a1", "my-host.123.example"}, true},
	{"alphanumeric tld", "a@example.c0m", mailbox.Address{"a", "example.c0m"}, true},
	{"64 octet local part", strings.Repeat("a", 64) + "@example.com", mailbox.Address{strings.Repeat("a", 64), "example.com"}, true},
	{"63 octet label", "a@" + strings.Repeat("b", 63) + ".example", mailbox.Address{"a", strings.Repeat("b", 63) + ".example"}, true},
	{"254 octets", strings.Repeat("a", 64) + "@" + longDomain(189), mailbox.Address{strings.Repeat("a", 64), longDomain(189)}, true},
	{"u-label", "user@bücher.example", mailbox.Address{"user", "xn--bcher-kva.example"}, true},
	{"upper-case u-label", "user@BÜCHER.example", mailbox.Address{"user", "xn--bcher-kva.example"}, true},
	{"a-label", "user@XN--BCHER-KVA.example", mailbox.Address{"user", "xn--bcher-kva.example"}, true},
	{"greek domain", "a@παράδειγμα.δοκιμή", mailbox.Address{"a", "xn--hxajbheg2az3al.xn--jxalpdlp"}, true},
	{"nfd domain", "user@bu\u0308cher.example", mailbox.Address{"user", "xn--bcher-kva.example"}, true},
	{"utf8 local part", "用户@例子.广告", mailbox.Address{"用户", "xn--fsqu00a.xn--4rr70v"}, false},
	{"utf8 local part ascii domain", "Ωμέγα@example.gr", mailbox.Address{"Ωμέγα", "example.gr"}, false},
	{"nfd local part", "jose\u0301@example.com", mailbox.Address{"jos\u00e9", "example.com"}, false},
	{"combining mark", "a\u0301\u0327b@example.com", mailbox.Address{"\u00e1\u0327b", "example.com"}, false},
}

// longDomain returns an n-octet domain of labels of at most 63 octets.
func longDomain(n int) string {
	var labels []string
	for n > 0 {
		l := min(n, 63)
		labels = append(labels, strings.Repeat("d", l))
		n -= l + 1
	}
	// The final label is shortened by one so that the dots fit.
	d := strings.Join(labels, ".")
	return d[:len(d)-4] + ".com"
}

var invalidTests = []struct {
	name string
	in   string
	want mailbox.Reason
}{
	{"empty", "", mailbox.Empty},
	{"blank", " \t ", mailbox.Empty},

	{"header injection", "a@b\r\nBcc: x@y", mailbox.ControlCharacter},
	{"trailing newline", "a@b\n", mailbox.ControlCharacter},
	{"trailing carriage return", "a@b.c\r", mailbox.ControlCharacter},
	{"nul", "\x00a@b.c", mailbox.ControlCharacter},
	{"inner tab", "a\tb@c.d", mailbox.ControlCharacter},
	{"del", "a\x7f@b.c", mailbox.ControlCharacter},
	{"c1 next line", "a\u0085@b.c", mailbox.ControlCharacter},
	{"line separator", "a@b.c\u2028", mailbox.ControlCharacter},
	{"paragraph separator", "a\u2029@b.c", mailbox.ControlCharacter},
	{"right-to-left override", "\u202emoc.elpmaxe@a", mailbox.ControlCharacter},
	{"control in overlong input", strings.Repeat("a", 5000) + "\n", mailbox.ControlCharacter},

	{"latin-1", "caf\xe9@example.com", mailbox.InvalidUTF8},
	{"truncated rune", "a@example.co\xc3", mailbox.InvalidUTF8},
	{"replacement character", "a\ufffd@example.com", mailbox.LocalPartInvalid},
	{"long invalid", strings.Repeat("\xff", 200), mailbox.InvalidUTF8},

	{"display name", "Alice <a@b.c>", mailbox.DisplayName},
	{"angle brackets", "<a@b.c>", mailbox.DisplayName},
	{"quoted display name", "\"Smith, Alice\" <a@b.c>", mailbox.DisplayName},
	{"comment", "a@b.c (Alice)", mailbox.DisplayName},
	{"inner comment", "a(work)@b.c", mailbox.DisplayName},

	{"comma list", "a@b.c, d@e.f", mailbox.MultipleAddresses},
	{"semicolon list", "a@b.c;d@e.f", mailbox.MultipleAddresses},
	{"space list", "a@b.c d@e.f", mailbox.MultipleAddresses},
	{"group", "friends: a@b.c;", mailbox.MultipleAddresses},

	{"no at", "alice", mailbox.NoAt},
	{"no at dotted", "alice.example.com", mailbox.NoAt},
	{"two at", "a@b@c.d", mailbox.MultipleAt},

	{"quoted", "\"quoted\"@x.y", mailbox.QuotedLocalPart},
	{"quoted at", "\"a@b\"@x.y", mailbox.QuotedLocalPart},

	{"double dot", "a..b@x.y", mailbox.LocalPartInvalid},
	{"leading dot", ".a@x.y", mailbox.LocalPartInvalid},
	{"trailing dot", "a.@x.y", mailbox.LocalPartInvalid},
	{"empty local part", "@x.y", mailbox.LocalPartInvalid},
	{"space", "a b@x.y", mailbox.LocalPartInvalid},
	{"backslash", "a\\b@x.y", mailbox.LocalPartInvalid},
	{"inner quote", "a\"b@x.y", mailbox.LocalPartInvalid},
	{"mailto", "mailto:a@x.y", mailbox.LocalPartInvalid},
	{"byte order mark", "\ufeffa@x.y", mailbox.LocalPartInvalid},
	{"no-break space", "a\u00a0b@x.y", mailbox.LocalPartInvalid},
	{"zero width space", "a\u200bb@x.y", mailbox.LocalPartInvalid},
	{"leading mark", "\u0301a@x.y", mailbox.LocalPartInvalid},
	{"mark after dot", "a.\u0301b@x.y", mailbox.LocalPartInvalid},
	{"mark after symbol", "a+\u0301@x.y", mailbox.LocalPartInvalid},
	{"symbol", "a\u2665@x.y", mailbox.LocalPartInvalid},
	{"private use", "a\ue000@x.y", mailbox.LocalPartInvalid},

	{"65 octet local part", strings.Repeat("a", 65) + "@x.y", mailbox.LocalPartTooLong},
	{"66 octet utf8 local part", strings.Repeat("é", 33) + "@x.y", mailbox.LocalPartTooLong},

	{"ipv4 literal", "a@[127.0.0.1]", mailbox.IPLiteral},
	{"ipv6 literal", "a@[IPv6:2001:db8::1]", mailbox.IPLiteral},
	{"bare ipv4", "a@192.0.2.1", mailbox.IPLiteral},
	{"bare ipv6", "a@2001:db8::1", mailbox.IPLiteral},
	{"unclosed literal", "a@[127.0.0.1", mailbox.IPLiteral},

	{"single label", "a@localhost", mailbox.DomainInvalid},
	{"empty domain", "a@", mailbox.DomainInvalid},
	{"trailing dot domain", "a@example.com.", mailbox.DomainInvalid},
	{"leading dot domain", "a@.example.com", mailbox.DomainInvalid},
	{"empty label", "a@example..com", mailbox.DomainInvalid},
	{"space in domain", "a@exa mple.com", mailbox.DomainInvalid},
	{"underscore", "a@exa_mple.com", mailbox.DomainInvalid},
	{"leading hyphen", "a@-example.com", mailbox.DomainInvalid},
	{"trailing hyphen", "a@example-.com", mailbox.DomainInvalid},
	{"reserved hyphens", "a@ab--cd.example", mailbox.DomainInvalid},
	{"numeric tld", "a@example.123", mailbox.DomainInvalid},
	{"bad punycode", "a@xn--a.example", mailbox.DomainInvalid},
	{"ascii punycode", "a@xn--abc-.example", mailbox.DomainInvalid},
	{"full-width", "a@ｅｘａｍｐｌｅ.com", mailbox.DomainInvalid},
	{"ideographic full stop", "a@例子。广告", mailbox.DomainInvalid},
	{"soft hyphen", "a@exam\u00adple.com", mailbox.DomainInvalid},
	{"bidi rule", "a@a\u05d0.com", mailbox.DomainInvalid},
	{"symbol in domain", "a@\u2665.example", mailbox.DomainInvalid},
	{"symbol a-label", "a@xn--g6h.example", mailbox.DomainInvalid},
	{"emoji domain", "a@\U0001F600.example", mailbox.DomainInvalid},
	{"contextual rune", "a@l\u00b7l.example", mailbox.DomainInvalid},

	{"64 octet label", "a@" + strings.Repeat("b", 64) + ".example", mailbox.DomainTooLong},
	{"254 octet domain", "a@" + longDomain(254), mailbox.DomainTooLong},
	{"long u-label", "a@" + strings.Repeat("ü", 60) + ".example", mailbox.DomainTooLong},

	{"255 octets", strings.Repeat("a", 64) + "@" + longDomain(190), mailbox.TooLong},
	{"huge input", strings.Repeat("a", 5000) + "@example.com", mailbox.TooLong},
}

func TestParseValid(t *testing.T) {
	for _, tt := range validTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mailbox.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v, want nil", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if s, want := got.String(), tt.want.LocalPart+"@"+tt.want.Domain; s != want {
				t.Errorf("Parse(%q).String() = %q, want %q", tt.in, s, want)
			}
			if a := got.IsASCII(); a != tt.ascii {
				t.Errorf("Parse(%q).IsASCII() = %v, want %v", tt.in, a, tt.ascii)
			}
			checkNetMail(t, got)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tt := range invalidTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mailbox.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want error %v", tt.in, got, tt.want)
			}
			if got != (mailbox.Address{}) {
				t.Errorf("Parse(%q) returned %#v with its error, want zero Address", tt.in, got)
			}
			var e *mailbox.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error is %T, want *mailbox.Error", tt.in, err)
			}
			if e.Reason != tt.want {
				t.Errorf("Parse(%q) reason = %v, want %v", tt.in, e.Reason, tt.want)
			}
			if e.Input != tt.in {
				t.Errorf("Parse(%q) error Input = %q, want the input unchanged", tt.in, e.Input)
			}
			// The message is shown to users and written to logs.
			msg := err.Error()
			if i := strings.IndexFunc(msg, unsafeRune); i >= 0 || !utf8.ValidString(msg) {
				t.Errorf("Parse(%q) error %q has an unsafe rune or invalid UTF-8", tt.in, msg)
			}
			if len(msg) > 300 {
				t.Errorf("Parse(%q) error is %d octets long, want it shortened", tt.in, len(msg))
			}
		})
	}
}

// checkNetMail checks that net/mail reads a.String() back unchanged, as the
// certificate linter zlint uses net/mail to recognise mailbox addresses.
func checkNetMail(t *testing.T, a mailbox.Address) {
	t.Helper()
	s := a.String()
	m, err := mail.ParseAddress(s)
	if err != nil {
		t.Fatalf("mail.ParseAddress(%q) error = %v", s, err)
	}
	if m.Address != s || m.Name != "" {
		t.Fatalf("mail.ParseAddress(%q) = %q, %q, want %q", s, m.Name, m.Address, s)
	}
}

// unsafeRune reports whether r could break a log line or page, or disguise
// text, if it were echoed back.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		unicode.Is(unicode.Bidi_Control, r)
}

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"case", "Alice.Smith@Example.COM", "alice.smith@example.com", true},
		{"u-label and a-label", "Bob@BÜCHER.example", "bob@xn--bcher-kva.example", true},
		{"nfd and nfc", "jose\u0301@example.com", "JOSÉ@example.com", true},
		{"final sigma", "ΟΔΥΣΣΕΥΣ@example.gr", "οδυσσευς@example.gr", true},
		{"kelvin sign", "\u212Aate@example.com", "kate@example.com", true},
		{"long s", "\u017Fam@example.com", "SAM@example.com", true},
		{"subaddress", "alice+tag@example.com", "alice@example.com", false},
		{"dots", "a.lice@example.com", "alice@example.com", false},
		{"domain", "alice@a.example", "alice@b.example", false},
		{"sharp s", "straße@example.de", "strasse@example.de", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := mailbox.Parse(tt.a)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.a, err)
			}
			b, err := mailbox.Parse(tt.b)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.b, err)
			}
			if same := a.Key() == b.Key(); same != tt.same {
				t.Errorf("Key(%q) = %q, Key(%q) = %q, equal = %v, want %v", tt.a, a.Key(), tt.b, b.Key(), same, tt.same)
			}
		})
	}
}

func TestKeyLowerCase(t *testing.T) {
	a, err := mailbox.Parse("Alice.Smith+Tag@Example.COM")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Key(), "alice.smith+tag@example.com"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
	if got, want := a.LocalPart, "Alice.Smith+Tag"; got != want {
		t.Errorf("LocalPart = %q, want %q: Key must not change the Address", got, want)
	}
}

func TestReasonString(t *testing.T) {
	tests := []struct {
		r    mailbox.Reason
		want string
	}{
		{mailbox.Empty, "Empty"},
		{mailbox.ControlCharacter, "ControlCharacter"},
		{mailbox.IPLiteral, "IPLiteral"},
		{mailbox.Reason(-1), "Reason(-1)"},
		{mailbox.Reason(1000), "Reason(1000)"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("Reason(%d).String() = %q, want %q", int(tt.r), got, tt.want)
		}
	}
}

func TestErrorUnknownReason(t *testing.T) {
	e := &mailbox.Error{Input: "a\r\n", Reason: mailbox.Reason(1000)}
	if msg := e.Error(); strings.IndexFunc(msg, unsafeRune) >= 0 || !strings.HasPrefix(msg, "mailbox: ") {
		t.Errorf("Error() = %q, want a safe message with the package prefix", msg)
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range validTests {
		f.Add(tt.in)
	}
	for _, tt := range invalidTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		a, err := mailbox.Parse(in)
		if err != nil {
			var e *mailbox.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error is %T, want *mailbox.Error", in, err)
			}
			if msg := err.Error(); strings.IndexFunc(msg, unsafeRune) >= 0 || !utf8.ValidString(msg) {
				t.Fatalf("Parse(%q) error %q echoes an unsafe rune", in, msg)
			}
			return
		}
		s := a.String()
		if i := strings.IndexFunc(s, unsafeRune); i >= 0 {
			t.Fatalf("Parse(%q).String() = %q has unsafe rune at %d", in, s, i)
		}
		if strings.ContainsAny(s, "\r\n") {
			t.Fatalf("Parse(%q).String() = %q has a line break", in, s)
		}
		if n := strings.Count(s, "@"); n != 1 {
			t.Fatalf("Parse(%q).String() = %q has %d @, want 1", in, s, n)
		}
		if len(s) > 254 || len(a.LocalPart) > 64 {
			t.Fatalf("Parse(%q).String() = %q is too long", in, s)
		}
		for i := 0; i < len(a.Domain); i++ {
			if c := a.Domain[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("Parse(%q).Domain = %q, want lower-case LDH", in, a.Domain)
			}
		}
		b, err := mailbox.Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, but Parse(%q) error = %v", in, s, s, err)
		}
		if b != a {
			t.Fatalf("Parse(%q) = %#v, but Parse(%q) = %#v", in, a, s, b)
		}
		if a.Key() != b.Key() {
			t.Fatalf("Key() differs between %#v and its re-parse", a)
		}
		checkNetMail(t, a)
	})
}
