package console

// ParseSearch is parseSearch, for the tests.
func ParseSearch(typed string) (mailbox, serial, surname, given string) {
	s := parseSearch(typed)
	return s.Mailbox, s.Serial, s.Surname, s.GivenName
}
