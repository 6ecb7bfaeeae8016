package mail

import (
	"bytes"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Header fields are folded before this column where they can be; RFC 5322
// asks for 78, and only an unbreakable token may run past it.
const foldColumn = 78

// headerWriter writes header fields as tokens separated by single spaces,
// replacing a space with CRLF SP where a line would grow past foldColumn.
// Tokens never contain CR or LF: every caller builds them from text that
// checkText or renderExtraHeaders has vetted, or from Compose's own constants.
// The only line breaks in a header block are therefore the ones written here,
// and each is followed by a space, which makes it a fold and not a new field.
type headerWriter struct {
	b      *bytes.Buffer
	col    int
	fields int
}

// check verifies, as a last line of defence against header injection, that
// the header block written so far starts exactly h.fields lines that are not
// folds: that no field was split or added by anything but headerWriter.
func (h *headerWriter) check() bool {
	n := 0
	for line := range bytes.SplitSeq(h.b.Bytes(), []byte("\r\n")) {
		if len(line) > 0 && line[0] != ' ' {
			n++
		}
	}
	return n == h.fields
}

// tokens writes the field name: toks[0] toks[1] ..., folding before a token
// that would pass foldColumn.
func (h *headerWriter) tokens(name string, toks []string) {
	h.fields++
	h.b.WriteString(name)
	h.b.WriteByte(':')
	h.col = len(name) + 1
	for i, t := range toks {
		h.sep(i > 0 && t != "" && h.col+1+len(t) > foldColumn)
		h.b.WriteString(t)
		h.col += len(t)
	}
	h.b.WriteString("\r\n")
}

func (h *headerWriter) sep(fold bool) {
	if fold {
		h.b.WriteString("\r\n ")
		h.col = 1
		return
	}
	h.b.WriteByte(' ')
	h.col++
}

// unstructured writes a field whose value is printable ASCII and spaces,
// folding only at a single space between two non-space characters, so that
// unfolding, even the kind that collapses white space, restores the value.
func (h *headerWriter) unstructured(name, value string) {
	h.fields++
	h.b.WriteString(name)
	h.b.WriteByte(':')
	h.col = len(name) + 1
	words := strings.Split(value, " ")
	for i, w := range words {
		fold := i > 0 && w != "" && words[i-1] != "" && h.col+1+len(w) > foldColumn
		h.sep(fold)
		h.b.WriteString(w)
		h.col += len(w)
	}
	h.b.WriteString("\r\n")
}

// addressList writes addresses, each given as its tokens, separated by commas.
func (h *headerWriter) addressList(name string, addrs [][]string) {
	var toks []string
	for i, a := range addrs {
		toks = append(toks, a...)
		if i < len(addrs)-1 {
			toks[len(toks)-1] += ","
		}
	}
	h.tokens(name, toks)
}

// renderAddress validates a and returns it as header tokens: the display
// name as atoms, a quoted string or RFC 2047 encoded-words, then "<addr>".
func renderAddress(field string, a Address) ([]string, error) {
	if a.Addr == "" {
		return nil, &ComposeError{field, Missing}
	}
	if err := checkAddr(field, a.Addr); err != nil {
		return nil, err
	}
	if err := checkText(field+".Name", a.Name, MaxNameLen); err != nil {
		return nil, err
	}
	return append(nameTokens(a.Name), "<"+a.Addr+">"), nil
}

// checkAddr accepts exactly the bare addr-specs that net/mail parses back to
// themselves, which rules out names, brackets, comments, quoted local parts,
// white space and lists.
func checkAddr(field, s string) error {
	if len(s) > MaxAddrLen {
		return &ComposeError{field, TooLong}
	}
	if err := checkText(field, s, MaxAddrLen); err != nil {
		return err
	}
	if strings.ContainsAny(s, " <>\"") {
		return &ComposeError{field, InvalidAddress}
	}
	p, err := netmail.ParseAddress(s)
	if err != nil || p.Name != "" || p.Address != s {
		return &ComposeError{field, InvalidAddress}
	}
	return nil
}

// checkText refuses s if it is longer than max octets, not UTF-8, or holds a
// control character.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return &ComposeError{field, TooLong}
	}
	if !utf8.ValidString(s) {
		return &ComposeError{field, InvalidUTF8}
	}
	for _, r := range s {
		if isControl(r) {
			return &ComposeError{field, ControlCharacter}
		}
	}
	return nil
}

// isControl reports whether r must not appear in header text. Besides the C0
// and C1 controls (CR, LF, NUL, TAB, DEL and the rest) it covers the Unicode
// line and paragraph separators, which some software treats as line breaks,
// and the bidirectional controls, which can make text display as other text.
// It matches the rule of internal/mailbox.
func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		unicode.Is(unicode.Bidi_Control, r)
}

// plainASCII reports whether s can go into a header as it is: printable
// ASCII words separated by single spaces, without "=?", which a reader could
// take for the start of an encoded-word.
func plainASCII(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") || strings.Contains(s, "=?") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// nameTokens renders a display name: as atoms when it is only atext words,
// as one quoted string when it is other short printable ASCII, and as
// encoded-words otherwise, since those can be folded and say exactly which
// characters they hold.
func nameTokens(name string) []string {
	if name == "" {
		return nil
	}
	if plainASCII(name) {
		words := strings.Split(name, " ")
		atoms := true
		for _, w := range words {
			atoms = atoms && len(w) <= maxPlainToken
			for i := 0; i < len(w); i++ {
				if !isAtext(w[i]) {
					atoms = false
				}
			}
		}
		if atoms {
			return words
		}
		if q := quoteString(name); len(q) <= maxPlainToken {
			return []string{q}
		}
	}
	return encodeWords(name)
}

// textTokens renders unstructured text such as a subject: as its words when
// that can be folded back exactly, otherwise as encoded-words.
func textTokens(s string) []string {
	if s == "" {
		return []string{""}
	}
	if plainASCII(s) {
		words := strings.Split(s, " ")
		fits := true
		for _, w := range words {
			if len(w) > 900 {
				fits = false
			}
		}
		if fits {
			return words
		}
	}
	return encodeWords(s)
}

func renderText(field, s string, max int) ([]string, error) {
	if err := checkText(field, s, max); err != nil {
		return nil, err
	}
	return textTokens(s), nil
}

func quoteString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// maxPlainToken is the longest atom or quoted string nameTokens writes, and
// maxEncodedWord the longest encoded-word encodeWords writes (RFC 2047 allows
// 75). Both leave room for the field name on the first line, so that a line
// passes foldColumn only when it holds a long address or subject word.
const (
	maxPlainToken  = 60
	maxEncodedWord = 60
)

// encodeWords encodes s as RFC 2047 "Q" encoded-words in UTF-8, each at
// most maxEncodedWord characters and none splitting a character. It leaves only letters,
// digits and "!*+-/" unencoded, the set that RFC 2047 section 5(3) allows in
// a phrase, so the words are safe in display names and subjects alike.
func encodeWords(s string) []string {
	const (
		prefix = "=?utf-8?q?"
		suffix = "?="
		room   = maxEncodedWord - len(prefix) - len(suffix)
	)
	const hex = "0123456789ABCDEF"
	var words []string
	var cur, enc []byte
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		enc = enc[:0]
		for _, c := range []byte(s[i : i+n]) {
			switch {
			case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
				c == '!' || c == '*' || c == '+' || c == '-' || c == '/':
				enc = append(enc, c)
			case c == ' ':
				enc = append(enc, '_')
			default:
				enc = append(enc, '=', hex[c>>4], hex[c&15])
			}
		}
		if len(cur)+len(enc) > room {
			words = append(words, prefix+string(cur)+suffix)
			cur = cur[:0]
		}
		cur = append(cur, enc...)
		i += n
	}
	return append(words, prefix+string(cur)+suffix)
}
