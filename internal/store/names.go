package store

import "strings"

// NameKey returns the key a surname is searched by: the name in lower
// case, with Go's full Unicode case mapping, so that "Ödegaard",
// "ÖDEGAARD" and "ödegaard" have the same key. SQL's lower() is no
// substitute: SQLite's folds ASCII only, and so does PostgreSQL's on the
// "C" collation. The stores write it with every enrolment they insert or
// change, and search by NameKey of what was typed.
func NameKey(name string) string {
	return strings.ToLower(name)
}
