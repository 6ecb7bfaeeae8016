package console

import "strings"

// search is what a list's search box asked for, as parseSearch read it.
type search struct {
	// Mailbox is the start of a mailbox, as typed; "" when the search is
	// by name.
	Mailbox string
	// Serial is the start of a certificate serial in the store's form, when
	// the text also reads as one: eight or more hex digits, colons, spaces
	// and dashes allowed.
	Serial string
	// Surname is the start of a surname (the last word typed), and
	// GivenName of the given name (the words before it); "" for a mailbox.
	Surname, GivenName string
}

// parseSearch reads what was typed into a list's search box, the same way
// on every list: text with "@", a dot, a digit, "_" or "+", which names
// lack, is the start of a mailbox; other text is "surname" or "given
// surname". Serial is set as well when the text reads as a serial: the
// certificates list, which alone searches serials, takes that reading
// first; the other lists take the mailbox or name.
func parseSearch(typed string) search {
	typed = strings.TrimSpace(typed)
	var s search
	switch {
	case typed == "":
		return s
	case strings.ContainsAny(typed, "@._+0123456789"):
		s.Mailbox = typed
	default:
		words := strings.Fields(typed)
		s.Surname = words[len(words)-1]
		s.GivenName = strings.Join(words[:len(words)-1], " ")
	}
	if n := normalSerial(typed); len(n) >= 8 {
		s.Serial = n
	}
	return s
}
