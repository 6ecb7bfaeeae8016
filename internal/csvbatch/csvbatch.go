// Package csvbatch reads invitation batches from CSV files, one row at a time.
package csvbatch

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailca/mailca/internal/mailbox"
)

// The canonical names of the columns the Reader understands. Header names
// are matched against them and their aliases ignoring case and surrounding
// space; see NewReader.
const (
	ColumnEmail     = "email"
	ColumnGivenName = "given name"
	ColumnSurname   = "surname"
)

// DefaultMaxRecordBytes bounds one record when Options.MaxRecordBytes is 0.
// An invitation row is a few hundred octets; 64 KiB leaves room for long
// custom columns while keeping a hostile file from costing memory.
const DefaultMaxRecordBytes = 64 << 10

// sniffBytes is how much of the file's start is examined to choose the
// delimiter and to recognise files that are not UTF-8 CSV. It is also the
// size of the read buffer.
const sniffBytes = 64 << 10

// Options adjusts a Reader. The zero value is ready to use.
type Options struct {
	// Require names the columns that must be non-empty in every row, in
	// addition to the email column, which always must. A name is matched as
	// a header name is: ColumnGivenName, ColumnSurname, one of their aliases,
	// or the key of a custom column. NewReader fails with ErrMissingColumn if
	// the header has no such column; a row where it is empty has the problem
	// MissingField.
	Require []string
	// MaxRecordBytes bounds one record, counted in octets as found in the
	// file, line endings included. 0 means DefaultMaxRecordBytes.
	MaxRecordBytes int
}

// Row is one record of a batch.
//
// When Problem is nil, Email is a valid address that no earlier row of the
// file had, and every field is set. When Problem is set, the fields hold
// what could be read, for the report only: they may hold control characters
// and invalid UTF-8, so pass them through Printable before showing them.
// Email is set for DuplicateInFile only; for Malformed only Line and, when
// it could be read, RawEmail are set.
type Row struct {
	// Line is the line of the file on which the record starts. The header
	// is on line 1 unless blank lines or an Excel "sep=" line precede it.
	Line int
	// Email is the parsed address.
	Email mailbox.Address
	// RawEmail is the email field as found, untrimmed.
	RawEmail string
	// GivenName and Surname are trimmed of surrounding white space. They
	// are empty when the file has no such column.
	GivenName, Surname string
	// Fields holds the custom columns, by key: the column's header name,
	// trimmed, with runs of white space made one space and lower-cased.
	// Values are trimmed; they may hold tabs and line breaks but no other
	// control character. Fields is nil when the file has no custom column.
	Fields map[string]string
	// Problem says why the row cannot be invited, or is nil.
	Problem *Problem
}

// A Reader reads the rows of one CSV file. It reads the file as the rows are
// asked for, holding one record at a time, so its memory does not grow with
// the file, except for the duplicate check: some 30 octets for every
// distinct address, 3 MB for 100,000 rows. Bound the input, for instance
// with http.MaxBytesReader, to bound that too.
//
// The file is read as RFC 4180 CSV as Excel, Google Sheets and HR systems
// write it: UTF-8 with or without a byte order mark, lines ended by CR LF or
// LF, fields quoted with double quotes, a quote inside a quoted field
// doubled. Blank lines, and records whose fields are all blank, are skipped.
//
// A record that cannot be read is reported as a Malformed row and reading
// goes on with the next record: a stray quote, a wrong number of fields, a
// record longer than Options.MaxRecordBytes, invalid UTF-8. The one
// exception is a quoted field still open at the end of the file or after
// MaxRecordBytes octets of its record: since an unbalanced quote hides where
// the following records begin, Next then returns an *Error with
// ErrUnclosedQuote, and the caller should treat the rest of the file as
// unread.
type Reader struct {
	fr   framer
	feed feed
	csv  *csv.Reader
	fed  int64 // octets given to csv since it was made

	columns  []string
	email    int // index of the email column
	given    int // index of the given name column, or -1
	surname  int // index of the surname column, or -1
	custom   []column
	required []column // besides email

	seen map[[16]byte]uint32 // truncated SHA-256 of Address.Key → first line
	err  error               // sticky: io.EOF or the error that ended reading

	desyncs int // records the framer and csv.Reader disagreed on; for tests
}

type column struct {
	index int
	key   string
}

// NewReader reads the start of the file from r: a UTF-8 byte order mark if
// there is one, an Excel "sep=;" line if there is one, any blank lines, and
// the header line, and returns a Reader positioned at the first row.
//
// The delimiter is the one of comma, semicolon and tab that occurs most
// often, outside quotes, on the header line (comma on a tie or when there is
// none), unless a "sep=" line names it.
//
// Header names are matched ignoring case, surrounding white space and runs
// of inner white space. An email column is required; it may be named
// "email", "e-mail", "mail", "email address", "e-mail address",
// "emailaddress" or "mailbox". The given name column may be named
// "given name", "givenname", "first name", "firstname", "forename",
// "given_name", "first_name" or "vorname"; the surname column "surname",
// "last name", "lastname", "family name", "familyname", "last_name" or
// "nachname". Every other named column is a custom field; a column whose
// name is blank is ignored, together with its values.
//
// To examine the start of the file, NewReader reads ahead up to 64 KiB: it
// returns when that much has arrived or the input has ended.
//
// The error is an *Error with ErrEmpty, ErrEncoding, ErrHeader,
// ErrNoEmailColumn, ErrDuplicateColumn, ErrMissingColumn or
// ErrUnclosedQuote, or an error from r.
func NewReader(r io.Reader, opts Options) (*Reader, error) {
	limit := opts.MaxRecordBytes
	switch {
	case limit == 0:
		limit = DefaultMaxRecordBytes
	case limit < 0:
		return nil, errors.New("csvbatch: Options.MaxRecordBytes is negative")
	}
	br := bufio.NewReaderSize(r, sniffBytes)
	delim, lines, err := sniff(br)
	if err != nil {
		return nil, err
	}
	rd := &Reader{
		fr:   framer{br: br, delim: delim, max: limit, line: lines},
		seen: make(map[[16]byte]uint32),
	}
	rd.csv = rd.newCSV()
	if err := rd.readHeader(opts.Require); err != nil {
		return nil, err
	}
	return rd, nil
}

func (r *Reader) newCSV() *csv.Reader {
	c := csv.NewReader(&r.feed)
	c.Comma = rune(r.fr.delim)
	c.FieldsPerRecord = -1
	c.ReuseRecord = true
	r.fed = 0
	return c
}

// sniff consumes the byte order mark and an Excel "sep=" line, refuses what
// is plainly not UTF-8 CSV, and chooses the delimiter. It returns the number
// of lines consumed.
func sniff(br *bufio.Reader) (delim byte, lines int, err error) {
	head, err := br.Peek(sniffBytes)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return 0, 0, fmt.Errorf("csvbatch: reading line 1: %w", err)
	}
	encodingErr := func(detail string) error {
		return &Error{Err: ErrEncoding, Detail: detail}
	}
	switch {
	case bytes.HasPrefix(head, []byte("\xEF\xBB\xBF")):
		br.Discard(3)
		head = head[3:]
	case bytes.HasPrefix(head, []byte("\xFF\xFE")), bytes.HasPrefix(head, []byte("\xFE\xFF")):
		return 0, 0, encodingErr(`the file is UTF-16 (Excel's "Unicode Text"); save it as "CSV UTF-8"`)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("\xD0\xCF\x11\xE0")):
		return 0, 0, encodingErr(`the file is a spreadsheet workbook, not CSV; save it as "CSV UTF-8"`)
	}

	n := bytes.IndexByte(head, '\n') + 1
	if n == 0 {
		n = len(head)
	}
	first := bytes.TrimSuffix(bytes.TrimSuffix(head[:n], []byte("\n")), []byte("\r"))
	if len(first) == 5 && bytes.EqualFold(first[:4], []byte("sep=")) && isDelim(first[4]) {
		delim := first[4]
		br.Discard(n)
		return delim, 1, nil
	}

	// The header is the first line that is not blank.
	for len(head) > 0 && (head[0] == '\n' || len(head) > 1 && head[0] == '\r' && head[1] == '\n') {
		head = head[bytes.IndexByte(head, '\n')+1:]
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	if bytes.IndexByte(line, 0) >= 0 {
		return 0, 0, encodingErr(`the header holds NUL characters, as UTF-16 text does; save the file as "CSV UTF-8"`)
	}
	var counts [3]int // comma, semicolon, tab
	inQuotes := false
	for i, c := range line {
		switch {
		case c == '"':
			inQuotes = !inQuotes
		case inQuotes:
		case c == ',':
			counts[0]++
		case c == ';':
			counts[1]++
		case c == '\t':
			counts[2]++
		case c == '\r' && i < len(line)-1:
			return 0, 0, &Error{Line: 1, Err: ErrHeader,
				Detail: `lines end with CR alone, as in the old Mac format; save the file as "CSV UTF-8"`}
		}
	}
	delim = ','
	switch {
	case counts[1] > counts[0] && counts[1] >= counts[2]:
		delim = ';'
	case counts[2] > counts[0] && counts[2] > counts[1]:
		delim = '\t'
	}
	return delim, 0, nil
}

func isDelim(c byte) bool { return c == ',' || c == ';' || c == '\t' }

// readHeader reads the header record and maps its columns.
func (r *Reader) readHeader(require []string) error {
	fr, err := r.fr.next()
	if err == io.EOF {
		return &Error{Err: ErrEmpty}
	}
	if err != nil {
		return err
	}
	if fr.tooLong {
		return &Error{Line: fr.start, Err: ErrHeader,
			Detail: fmt.Sprintf("it is longer than %d octets", r.fr.max)}
	}
	fields, perr := r.parse(fr)
	if perr != nil {
		return &Error{Line: fr.start, Err: ErrHeader, Detail: perr.Detail}
	}
	for _, f := range fields {
		if !utf8.ValidString(f) {
			return &Error{Line: fr.start, Err: ErrEncoding,
				Detail: `the header is not valid UTF-8; save the file as "CSV UTF-8"`}
		}
	}
	r.columns = make([]string, len(fields))
	copy(r.columns, fields)

	r.email, r.given, r.surname = -1, -1, -1
	byKey := make(map[string]int, len(fields))
	for i, name := range r.columns {
		if strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return &Error{Line: fr.start, Err: ErrHeader,
				Detail: fmt.Sprintf("the name of column %d, %s, holds a control character", i+1, quoted(name))}
		}
		key := canonical(normalize(name))
		if key == "" {
			continue
		}
		if j, dup := byKey[key]; dup {
			return &Error{Line: fr.start, Err: ErrDuplicateColumn,
				Detail: fmt.Sprintf("columns %d and %d, %s and %s, both mean %q", j+1, i+1, quoted(r.columns[j]), quoted(name), key)}
		}
		byKey[key] = i
		switch key {
		case ColumnEmail:
			r.email = i
		case ColumnGivenName:
			r.given = i
		case ColumnSurname:
			r.surname = i
		default:
			r.custom = append(r.custom, column{i, key})
		}
	}
	if r.email < 0 {
		return &Error{Line: fr.start, Err: ErrNoEmailColumn,
			Detail: "found " + r.found() + `; name the column "email"`}
	}
	for _, name := range require {
		key := canonical(normalize(name))
		i, ok := byKey[key]
		if !ok {
			return &Error{Line: fr.start, Err: ErrMissingColumn,
				Detail: fmt.Sprintf("%s is required; found %s", quoted(name), r.found())}
		}
		if key != ColumnEmail {
			r.required = append(r.required, column{i, key})
		}
	}
	return nil
}

// found lists the header's names for an error message, shortened.
func (r *Reader) found() string {
	const most = 12
	var names []string
	for _, c := range r.columns {
		if strings.TrimSpace(c) == "" {
			continue
		}
		if len(names) == most {
			names = append(names, "...")
			break
		}
		names = append(names, quoted(c))
	}
	if len(names) == 0 {
		return "no column names"
	}
	return strings.Join(names, ", ")
}

// quoted quotes a name from the file for an error message, cut short.
func quoted(s string) string {
	const most = 40
	if len(s) > most {
		i := most
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		return strconv.Quote(s[:i]) + "..."
	}
	return strconv.Quote(s)
}

// normalize lower-cases a header name and makes its white space single
// spaces.
func normalize(name string) string {
	return strings.ToLower(strings.Join(strings.Fields(name), " "))
}

// canonical maps an alias to its column's canonical name.
func canonical(key string) string {
	switch key {
	case "email", "e-mail", "mail", "email address", "e-mail address", "emailaddress", "mailbox":
		return ColumnEmail
	case "given name", "givenname", "first name", "firstname", "forename", "given_name", "first_name", "vorname":
		return ColumnGivenName
	case "surname", "last name", "lastname", "family name", "familyname", "last_name", "nachname":
		return ColumnSurname
	}
	return key
}

// Delimiter returns the delimiter in use: ',', ';' or '\t'.
func (r *Reader) Delimiter() rune { return rune(r.fr.delim) }

// Columns returns the header's names as found in the file.
func (r *Reader) Columns() []string {
	c := make([]string, len(r.columns))
	copy(c, r.columns)
	return c
}

// Next returns the next row. A row with a problem is returned with
// Row.Problem set and a nil error: report it and go on. At the end of the
// file Next returns io.EOF. Any other error ends reading, and Next returns
// it again if called again: an *Error with ErrUnclosedQuote, or an error from
// the underlying reader.
func (r *Reader) Next() (Row, error) {
	if r.err != nil {
		return Row{}, r.err
	}
	for {
		fr, err := r.fr.next()
		if err != nil {
			r.err = err
			return Row{}, err
		}
		if fr.tooLong {
			return Row{Line: fr.start, Problem: &Problem{Reason: Malformed,
				Detail: fmt.Sprintf("the record is longer than %d octets%s", r.fr.max, span(fr))}}, nil
		}
		fields, p := r.parse(fr)
		if p != nil {
			row := Row{Line: fr.start, Problem: p}
			if r.email < len(fields) {
				row.RawEmail = fields[r.email]
			}
			return row, nil
		}
		if allBlank(fields) {
			continue
		}
		return r.row(fr, fields), nil
	}
}

// parse has csv.Reader parse one framed record. The fields are valid until
// the next call.
func (r *Reader) parse(fr frame) ([]string, *Problem) {
	r.feed = feed{b: fr.data}
	fields, err := r.csv.Read()
	r.fed += int64(len(fr.data))
	if r.feed.over || r.csv.InputOffset() != r.fed || err == io.EOF {
		// The framer and csv.Reader disagree on where the record ends. It
		// should not happen; if it does, start csv.Reader afresh so that the
		// disagreement is confined to this record.
		r.desyncs++
		r.csv = r.newCSV()
		return nil, &Problem{Reason: Malformed, Detail: "the record cannot be read as CSV" + span(fr)}
	}
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return fields, &Problem{Reason: Malformed, Detail: err.Error(), Err: err}
		}
		// csv.Reader numbers lines from the start of what it was fed.
		line := fr.start + pe.Line - pe.StartLine
		detail := fmt.Sprintf("%v, on line %d, column %d", pe.Err, line, pe.Column)
		if line != fr.start {
			detail += fmt.Sprintf(" (the record starts on line %d)", fr.start)
		}
		return fields, &Problem{Reason: Malformed, Detail: detail, Err: pe.Err}
	}
	return fields, nil
}

// span says which lines a record covers when it covers more than one, as
// an unbalanced quote makes it do.
func span(fr frame) string {
	if fr.end <= fr.start {
		return ""
	}
	return fmt.Sprintf(" (the record runs from line %d to line %d)", fr.start, fr.end)
}

func allBlank(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// row checks a record's fields and makes a Row of them. The checks run in
// the order of the Reasons they report: Malformed, InvalidName,
// MissingField, InvalidMailbox, DuplicateInFile.
func (r *Reader) row(fr frame, fields []string) Row {
	row := Row{Line: fr.start}
	if r.email < len(fields) {
		row.RawEmail = fields[r.email]
	}
	malformed := func(format string, args ...any) Row {
		row.Problem = &Problem{Reason: Malformed, Detail: fmt.Sprintf(format, args...) + span(fr)}
		return row
	}

	// Extra fields are allowed when blank, because spreadsheets write empty
	// trailing cells that were once formatted.
	if len(fields) < len(r.columns) || len(fields) > len(r.columns) && !allBlank(fields[len(r.columns):]) {
		return malformed("the row has %d fields but the header has %d", len(fields), len(r.columns))
	}
	for i, f := range fields[:len(r.columns)] {
		if !utf8.ValidString(f) {
			return malformed("column %d, %s, is not valid UTF-8; save the file as \"CSV UTF-8\"", i+1, quoted(r.columns[i]))
		}
	}
	for _, c := range r.custom {
		if strings.IndexFunc(fields[c.index], isBadFieldRune) >= 0 {
			return malformed("column %d, %s, holds a control character", c.index+1, quoted(r.columns[c.index]))
		}
	}

	if r.given >= 0 {
		row.GivenName = strings.TrimSpace(fields[r.given])
	}
	if r.surname >= 0 {
		row.Surname = strings.TrimSpace(fields[r.surname])
	}
	if len(r.custom) > 0 {
		row.Fields = make(map[string]string, len(r.custom))
		for _, c := range r.custom {
			row.Fields[c.key] = strings.TrimSpace(fields[c.index])
		}
	}
	for _, n := range [...]struct{ name, value string }{{ColumnGivenName, row.GivenName}, {ColumnSurname, row.Surname}} {
		if strings.IndexFunc(n.value, isBadNameRune) >= 0 {
			row.Problem = &Problem{Reason: InvalidName,
				Detail: fmt.Sprintf("the %s %s holds a control character", n.name, quoted(n.value))}
			return row
		}
	}

	var missing []string
	if strings.TrimSpace(row.RawEmail) == "" {
		missing = append(missing, ColumnEmail)
	}
	for _, c := range r.required {
		if strings.TrimSpace(fields[c.index]) == "" {
			missing = append(missing, c.key)
		}
	}
	if len(missing) > 0 {
		verb := " is empty"
		if len(missing) > 1 {
			verb = " are empty"
		}
		row.Problem = &Problem{Reason: MissingField, Detail: strings.Join(missing, ", ") + verb}
		return row
	}

	addr, err := mailbox.Parse(row.RawEmail)
	if err != nil {
		row.Problem = &Problem{Reason: InvalidMailbox, Detail: err.Error(), Err: err}
		return row
	}
	row.Email = addr
	sum := sha256.Sum256([]byte(addr.Key()))
	key := [16]byte(sum[:16])
	if first, dup := r.seen[key]; dup {
		row.Problem = &Problem{Reason: DuplicateInFile,
			Detail: fmt.Sprintf("the same address as line %d", first)}
		return row
	}
	first := uint32(math.MaxUint32) // a line number past 4 billion is shown wrongly
	if uint64(fr.start) < math.MaxUint32 {
		first = uint32(fr.start)
	}
	r.seen[key] = first
	return row
}

// isBadNameRune reports whether r may not appear in a name: the C0 and C1
// controls, CR and LF above all, the Unicode line and paragraph separators,
// and the bidirectional controls, which can make a name display as another.
func isBadNameRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		unicode.Is(unicode.Bidi_Control, r)
}

// isBadFieldRune reports whether r may not appear in a custom field: a
// control character other than tab and line breaks, which a free-text
// column may legitimately hold.
func isBadFieldRune(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
}
