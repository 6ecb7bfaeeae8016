package csvbatch

import "strings"

// SafeCell returns s with a leading apostrophe when it starts with =, +, -,
// @, tab or CR, so that a spreadsheet shows the cell as text rather than
// running it as a formula ("CSV injection"). Nothing else is changed: unlike
// the cells of a ReportWriter, s is neither escaped nor shortened, for
// exports that must keep every character of a value.
func SafeCell(s string) string {
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		return "'" + s
	}
	return s
}
