package csvbatch_test

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/csvbatch"
)

// row is what the tests compare of a csvbatch.Row. Detail texts are for
// people and are not compared.
type row struct {
	Line           int
	Email          string // Email.String(), or "" when not set
	Raw            string
	Given, Surname string
	Fields         map[string]string
	Reason         csvbatch.Reason // 0 when there is no problem
}

func (r row) String() string {
	return fmt.Sprintf("{line %d email %q raw %q given %q surname %q fields %q reason %v}",
		r.Line, r.Email, r.Raw, r.Given, r.Surname, r.Fields, r.Reason)
}

func toRow(r csvbatch.Row) row {
	got := row{Line: r.Line, Raw: r.RawEmail, Given: r.GivenName, Surname: r.Surname, Fields: r.Fields}
	if r.Email.LocalPart != "" {
		got.Email = r.Email.String()
	}
	if r.Problem != nil {
		got.Reason = r.Problem.Reason
	}
	return got
}

func equal(a, b row) bool {
	return a.Line == b.Line && a.Email == b.Email && a.Raw == b.Raw && a.Given == b.Given &&
		a.Surname == b.Surname && a.Reason == b.Reason && maps.Equal(a.Fields, b.Fields) &&
		(a.Fields == nil) == (b.Fields == nil)
}

// ok is a row without a problem whose raw email is its address.
func ok(line int, email, given, surname string) row {
	return row{Line: line, Email: email, Raw: email, Given: given, Surname: surname}
}

// bad is a row with a problem.
func bad(line int, raw string, reason csvbatch.Reason) row {
	return row{Line: line, Raw: raw, Reason: reason}
}

// readAll reads every row of input, checking the invariants that hold for
// every file, and returns the rows and the error that ended reading, which
// is nil at io.EOF.
func readAll(t *testing.T, input string, opts csvbatch.Options) (*csvbatch.Reader, []csvbatch.Row, error) {
	t.Helper()
	r, err := csvbatch.NewReader(strings.NewReader(input), opts)
	if err != nil {
		t.Fatalf("NewReader(%q) error = %v", input, err)
	}
	var rows []csvbatch.Row
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if _, again := r.Next(); again != err {
				t.Errorf("Next after error %v = %v, want the same error", err, again)
			}
			return r, rows, err
		}
		if row.Problem != nil && row.Problem.Detail == "" {
			t.Errorf("row on line %d: Problem %v has no detail", row.Line, row.Problem.Reason)
		}
		rows = append(rows, row)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after io.EOF = %v, want io.EOF", err)
	}
	if n := csvbatch.Desyncs(r); n != 0 {
		t.Errorf("framer and csv.Reader disagreed on %d records", n)
	}
	return r, rows, nil
}

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	huge := strings.Repeat("y", 100<<10)
	tests := []struct {
		name     string
		input    string
		opts     csvbatch.Options
		delim    rune // 0: not checked
		columns  []string
		want     []row
		wantErr  error // the error that ends reading, nil for io.EOF
		wantLine int   // its line
	}{{
		name:    "comma LF",
		input:   "email,given name,surname\nalice@example.com,Alice,Smith\nbob@example.com,Bob,Jones\n",
		delim:   ',',
		columns: []string{"email", "given name", "surname"},
		want:    []row{ok(2, "alice@example.com", "Alice", "Smith"), ok(3, "bob@example.com", "Bob", "Jones")},
	}, {
		name:    "BOM and CRLF",
		input:   "\uFEFFEmail,First Name,Last Name\r\nalice@example.com,Alice,Smith\r\nbob@example.com,Bob,Jones\r\n",
		delim:   ',',
		columns: []string{"Email", "First Name", "Last Name"},
		want:    []row{ok(2, "alice@example.com", "Alice", "Smith"), ok(3, "bob@example.com", "Bob", "Jones")},
	}, {
		name:    "semicolon with German headers",
		input:   "\uFEFFE-Mail;Vorname;Nachname\r\njörg@bücher.example;Jörg;Müller\r\n",
		delim:   ';',
		columns: []string{"E-Mail", "Vorname", "Nachname"},
		want:    []row{{Line: 2, Email: "jörg@xn--bcher-kva.example", Raw: "jörg@bücher.example", Given: "Jörg", Surname: "Müller"}},
	}, {
		name:  "tab",
		input: "email\tgivenname\tfamily name\nalice@example.com\tAlice, Jr.\tSmith; Jones\n",
		delim: '\t',
		want:  []row{ok(2, "alice@example.com", "Alice, Jr.", "Smith; Jones")},
	}, {
		name:  "Excel sep line",
		input: "sep=;\r\nemail;given name\r\nalice@example.com;Alice, Jr.\r\n",
		delim: ';',
		want:  []row{ok(3, "alice@example.com", "Alice, Jr.", "")},
	}, {
		name:  "delimiter inside quotes does not count",
		input: "\"Mail, work\";\"Name, given\";email\nx;y;alice@example.com\n",
		delim: ';',
		want:  []row{{Line: 2, Email: "alice@example.com", Raw: "alice@example.com", Fields: map[string]string{"mail, work": "x", "name, given": "y"}}},
	}, {
		name: "quoted fields with delimiters, quotes and newlines",
		input: "email,given name,surname,notes\n" +
			"\"alice@example.com\",\"Alice\",\"Smith, Jr.\",\"said \"\"hi\"\"\non two lines\"\n" +
			"bob@example.com,Bob,\"Jones\",\"\"\r\n" +
			"carol@example.com,Carol,Ng,\"a\r\n\r\nb\"\r\n",
		want: []row{
			{Line: 2, Email: "alice@example.com", Raw: "alice@example.com", Given: "Alice", Surname: "Smith, Jr.",
				Fields: map[string]string{"notes": "said \"hi\"\non two lines"}},
			{Line: 4, Email: "bob@example.com", Raw: "bob@example.com", Given: "Bob", Surname: "Jones",
				Fields: map[string]string{"notes": ""}},
			// csv.Reader turns CR LF inside a quoted field into LF.
			{Line: 5, Email: "carol@example.com", Raw: "carol@example.com", Given: "Carol", Surname: "Ng",
				Fields: map[string]string{"notes": "a\n\nb"}},
		},
	}, {
		name:    "aliases, case and white space",
		input:   "  EMAIL  ADDRESS ,Given_Name,LAST_NAME\n alice@example.com , Alice ,\u00a0Smith\u00a0\n",
		columns: []string{"  EMAIL  ADDRESS ", "Given_Name", "LAST_NAME"},
		want:    []row{{Line: 2, Email: "alice@example.com", Raw: " alice@example.com ", Given: "Alice", Surname: "Smith"}},
	}, {
		name:  "other aliases",
		input: "Mailbox,Forename,Family Name\nalice@example.com,Alice,Smith\n",
		want:  []row{ok(2, "alice@example.com", "Alice", "Smith")},
	}, {
		name:  "custom columns, and an unnamed column ignored",
		input: "Email,Department, Cost  Centre ,\nalice@example.com,Sales , 4711,ignored\nbob@example.com,,,\n",
		want: []row{
			{Line: 2, Email: "alice@example.com", Raw: "alice@example.com", Fields: map[string]string{"department": "Sales", "cost centre": "4711"}},
			{Line: 3, Email: "bob@example.com", Raw: "bob@example.com", Fields: map[string]string{"department": "", "cost centre": ""}},
		},
	}, {
		name:  "single column",
		input: "Mail\nalice@example.com\n",
		want:  []row{ok(2, "alice@example.com", "", "")},
	}, {
		name:  "header only",
		input: "email,given name\r\n",
	}, {
		name: "wrong field count",
		input: "email,given name\n" +
			"alice@example.com,Alice,Extra\n" +
			"bob@example.com\n" +
			"carol@example.com,Carol\n" +
			"dave@example.com,Dave,,\n", // blank extra fields are allowed
		want: []row{
			bad(2, "alice@example.com", csvbatch.Malformed),
			bad(3, "bob@example.com", csvbatch.Malformed),
			ok(4, "carol@example.com", "Carol", ""),
			ok(5, "dave@example.com", "Dave", ""),
		},
	}, {
		name:  "too few fields to reach the email column",
		input: "given name,email\nAlice\n",
		want:  []row{bad(2, "", csvbatch.Malformed)},
	}, {
		name:  "invalid mailbox",
		input: "email\nnot-an-address\nAlice <alice@example.com>\nalice@[192.0.2.1]\nalice@example.com\n",
		want: []row{
			bad(2, "not-an-address", csvbatch.InvalidMailbox),
			bad(3, "Alice <alice@example.com>", csvbatch.InvalidMailbox),
			bad(4, "alice@[192.0.2.1]", csvbatch.InvalidMailbox),
			ok(5, "alice@example.com", "", ""),
		},
	}, {
		name:  "duplicates differing in case and space",
		input: "email\nAlice@Example.com\nbob@example.com\nALICE@EXAMPLE.COM\n alice@example.com \n",
		want: []row{
			{Line: 2, Email: "Alice@example.com", Raw: "Alice@Example.com"},
			ok(3, "bob@example.com", "", ""),
			{Line: 4, Email: "ALICE@example.com", Raw: "ALICE@EXAMPLE.COM", Reason: csvbatch.DuplicateInFile},
			{Line: 5, Email: "alice@example.com", Raw: " alice@example.com ", Reason: csvbatch.DuplicateInFile},
		},
	}, {
		name:  "a rejected row does not make a later one a duplicate",
		input: "email,given name\nalice@example.com,\"Eve\r\nBcc: x@example.net\"\nalice@example.com,Alice\n",
		want: []row{
			{Line: 2, Raw: "alice@example.com", Given: "Eve\nBcc: x@example.net", Reason: csvbatch.InvalidName},
			ok(4, "alice@example.com", "Alice", ""),
		},
	}, {
		name: "header injection and other control characters in names",
		input: "email,given name,surname\r\n" +
			"alice@example.com,\"Eve\r\nBcc: x@y\",Smith\r\n" +
			"bob@example.com,Bob,\"Jones\x00\"\r\n" +
			"carol@example.com,\u202Eloras,Ng\r\n" +
			"dave@example.com,Dave\u2028Bcc,Ng\r\n" +
			"erin@example.com,Er\u0085in,Ng\r\n",
		want: []row{
			{Line: 2, Raw: "alice@example.com", Given: "Eve\nBcc: x@y", Surname: "Smith", Reason: csvbatch.InvalidName},
			{Line: 4, Raw: "bob@example.com", Given: "Bob", Surname: "Jones\x00", Reason: csvbatch.InvalidName},
			{Line: 5, Raw: "carol@example.com", Given: "\u202Eloras", Surname: "Ng", Reason: csvbatch.InvalidName},
			{Line: 6, Raw: "dave@example.com", Given: "Dave\u2028Bcc", Surname: "Ng", Reason: csvbatch.InvalidName},
			{Line: 7, Raw: "erin@example.com", Given: "Er\u0085in", Surname: "Ng", Reason: csvbatch.InvalidName},
		},
	}, {
		name:  "control character in the email field",
		input: "email\n\"alice@example.com\r\nBcc: x@y\"\n",
		want:  []row{bad(2, "alice@example.com\nBcc: x@y", csvbatch.InvalidMailbox)},
	}, {
		name:  "control characters in custom fields",
		input: "email,notes\nalice@example.com,\"a\tb\nc\"\nbob@example.com,x\x01y\n",
		want: []row{
			{Line: 2, Email: "alice@example.com", Raw: "alice@example.com", Fields: map[string]string{"notes": "a\tb\nc"}},
			bad(4, "bob@example.com", csvbatch.Malformed),
		},
	}, {
		name: "blank lines and empty rows are skipped",
		input: "\n\r\nemail,given name\n\nalice@example.com,Alice\n\r\n,\n  ,\u00a0\n\"\",\"\"\n" +
			"bob@example.com,Bob\n\n",
		want: []row{ok(5, "alice@example.com", "Alice", ""), ok(10, "bob@example.com", "Bob", "")},
	}, {
		name:  "no final line ending",
		input: "email,given name\nalice@example.com,Alice",
		want:  []row{ok(2, "alice@example.com", "Alice", "")},
	}, {
		name:  "no final line ending, quoted",
		input: "email,given name\nalice@example.com,\"Alice\"",
		want:  []row{ok(2, "alice@example.com", "Alice", "")},
	}, {
		name:  "final CR without LF",
		input: "email\r\nalice@example.com\r",
		want:  []row{ok(2, "alice@example.com", "", "")},
	}, {
		name:  "final quoted field and CR without LF",
		input: "email\r\n\"alice@example.com\"\r",
		want:  []row{ok(2, "alice@example.com", "", "")},
	}, {
		name:  "final blank line of a lone CR",
		input: "email\nalice@example.com\n\r",
		want:  []row{ok(2, "alice@example.com", "", "")},
	}, {
		name:  "not UTF-8",
		input: "email,given name\nalice@example.com,J\xF6rg\nbob@example.com,Bob\nb\xE4r@example.com,B\n",
		want: []row{
			bad(2, "alice@example.com", csvbatch.Malformed),
			ok(3, "bob@example.com", "Bob", ""),
			bad(4, "b\xE4r@example.com", csvbatch.Malformed),
		},
	}, {
		name:  "bare quote",
		input: "email,given name\nalice@example.com,Al\"ice\nbob@example.com,Bob\n",
		want:  []row{bad(2, "alice@example.com", csvbatch.Malformed), ok(3, "bob@example.com", "Bob", "")},
	}, {
		name:  "text after a closing quote",
		input: "email,given name\n\"alice@example.com\"x,Alice\n\"bob@example.com\"\r,Bob\ncarol@example.com,Carol\n",
		want:  []row{bad(2, "", csvbatch.Malformed), bad(3, "", csvbatch.Malformed), ok(4, "carol@example.com", "Carol", "")},
	}, {
		name: "unbalanced quote closed by a later one",
		input: "email,given name\n" +
			"alice@example.com,\"Alice\n" +
			"bob@example.com,Bob\n" +
			"carol@example.com,\"Carol\"\n" +
			"dave@example.com,Dave\n",
		want: []row{bad(2, "alice@example.com", csvbatch.Malformed), ok(5, "dave@example.com", "Dave", "")},
	}, {
		name:  "missing email",
		input: "email,given name\n,Alice\n  ,Bob\n",
		want:  []row{{Line: 2, Given: "Alice", Reason: csvbatch.MissingField}, {Line: 3, Raw: "  ", Given: "Bob", Reason: csvbatch.MissingField}},
	}, {
		name:  "required columns",
		opts:  csvbatch.Options{Require: []string{"First Name", " DEPARTMENT", "email"}},
		input: "email,given name,Department\nalice@example.com,,Sales\nbob@example.com,Bob, \ncarol@example.com,Carol,HR\n",
		want: []row{
			{Line: 2, Raw: "alice@example.com", Fields: map[string]string{"department": "Sales"}, Reason: csvbatch.MissingField},
			{Line: 3, Raw: "bob@example.com", Given: "Bob", Fields: map[string]string{"department": ""}, Reason: csvbatch.MissingField},
			{Line: 4, Email: "carol@example.com", Raw: "carol@example.com", Given: "Carol", Fields: map[string]string{"department": "HR"}},
		},
	}, {
		name:  "record too long",
		opts:  csvbatch.Options{MaxRecordBytes: 64},
		input: "email,notes\nalice@example.com,short\nbob@example.com," + long + "\ncarol@example.com,\"q\"\n",
		want: []row{
			{Line: 2, Email: "alice@example.com", Raw: "alice@example.com", Fields: map[string]string{"notes": "short"}},
			bad(3, "", csvbatch.Malformed),
			{Line: 4, Email: "carol@example.com", Raw: "carol@example.com", Fields: map[string]string{"notes": "q"}},
		},
	}, {
		name:  "record too long over several lines",
		opts:  csvbatch.Options{MaxRecordBytes: 64},
		input: "email,notes\nbob@example.com,\"" + long[:20] + "\n" + long[:5] + "\"," + long + "\ncarol@example.com,x\n",
		want:  []row{bad(2, "", csvbatch.Malformed), {Line: 4, Email: "carol@example.com", Raw: "carol@example.com", Fields: map[string]string{"notes": "x"}}},
	}, {
		name:  "records longer than the read buffer",
		opts:  csvbatch.Options{MaxRecordBytes: 256 << 10},
		input: "email,notes\nalice@example.com," + huge + "\nbob@example.com,\"" + huge + "\n" + huge + "\"\ncarol@example.com,x\n",
		want: []row{
			{Line: 2, Email: "alice@example.com", Raw: "alice@example.com", Fields: map[string]string{"notes": huge}},
			{Line: 3, Email: "bob@example.com", Raw: "bob@example.com", Fields: map[string]string{"notes": huge + "\n" + huge}},
			{Line: 5, Email: "carol@example.com", Raw: "carol@example.com", Fields: map[string]string{"notes": "x"}},
		},
	}, {
		name:  "record longer than the default limit and the read buffer",
		input: "email,notes\nalice@example.com," + huge + "\nbob@example.com,\"x\"\n",
		want: []row{
			bad(2, "", csvbatch.Malformed),
			{Line: 3, Email: "bob@example.com", Raw: "bob@example.com", Fields: map[string]string{"notes": "x"}},
		},
	}, {
		name:     "quote never closed",
		input:    "email,given name\nalice@example.com,Alice\nbob@example.com,\"Bob\ncarol@example.com,Carol\n",
		want:     []row{ok(2, "alice@example.com", "Alice", "")},
		wantErr:  csvbatch.ErrUnclosedQuote,
		wantLine: 3,
	}, {
		name:     "quoted field longer than the limit",
		opts:     csvbatch.Options{MaxRecordBytes: 64},
		input:    "email,notes\nalice@example.com,x\nbob@example.com,\"" + long + "\"\ncarol@example.com,x\n",
		want:     []row{{Line: 2, Email: "alice@example.com", Raw: "alice@example.com", Fields: map[string]string{"notes": "x"}}},
		wantErr:  csvbatch.ErrUnclosedQuote,
		wantLine: 3,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rows, err := readAll(t, tt.input, tt.opts)
			if tt.delim != 0 && r.Delimiter() != tt.delim {
				t.Errorf("Delimiter() = %q, want %q", r.Delimiter(), tt.delim)
			}
			if tt.columns != nil && !equalStrings(r.Columns(), tt.columns) {
				t.Errorf("Columns() = %q, want %q", r.Columns(), tt.columns)
			}
			for i := range max(len(rows), len(tt.want)) {
				switch {
				case i >= len(rows):
					t.Errorf("row %d missing, want %v", i, tt.want[i])
				case i >= len(tt.want):
					t.Errorf("row %d = %v, want none (problem %v)", i, toRow(rows[i]), rows[i].Problem)
				case !equal(toRow(rows[i]), tt.want[i]):
					t.Errorf("row %d = %v, want %v (problem %v)", i, toRow(rows[i]), tt.want[i], rows[i].Problem)
				}
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Errorf("Next error = %v, want io.EOF", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Next error = %v, want %v", err, tt.wantErr)
			case tt.wantErr != nil:
				var e *csvbatch.Error
				if !errors.As(err, &e) || e.Line != tt.wantLine {
					t.Errorf("Next error = %#v, want an *Error on line %d", err, tt.wantLine)
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProblemErr checks that the underlying errors are there for errors.Is
// and errors.As.
func TestProblemErr(t *testing.T) {
	_, rows, err := readAll(t, "email,n\n\"a\"x,b\na\"b,c\nnobody,x\n", csvbatch.Options{})
	if err != nil || len(rows) != 3 {
		t.Fatalf("read %d rows, error %v; want 3 rows", len(rows), err)
	}
	for i, want := range []error{csv.ErrQuote, csv.ErrBareQuote} {
		if p := rows[i].Problem; p == nil || !errors.Is(p, want) {
			t.Errorf("row %d: Problem = %v, want one wrapping %v", i, p, want)
		}
	}
	if p := rows[2].Problem; p == nil || p.Reason != csvbatch.InvalidMailbox || p.Err == nil {
		t.Errorf("row 2: Problem = %v, want InvalidMailbox with the mailbox error", p)
	}
}

func TestNewReaderErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		opts  csvbatch.Options
		want  error
	}{
		{"empty", "", csvbatch.Options{}, csvbatch.ErrEmpty},
		{"only a BOM", "\uFEFF", csvbatch.Options{}, csvbatch.ErrEmpty},
		{"only blank lines", "\n\r\n\n", csvbatch.Options{}, csvbatch.ErrEmpty},
		{"only a sep line", "sep=,\n", csvbatch.Options{}, csvbatch.ErrEmpty},
		{"no email column", "name,phone\nx,y\n", csvbatch.Options{}, csvbatch.ErrNoEmailColumn},
		{"no column names", ",,\n", csvbatch.Options{}, csvbatch.ErrNoEmailColumn},
		{"email column split by the wrong delimiter", "email;name,x\n", csvbatch.Options{}, csvbatch.ErrNoEmailColumn},
		{"header not UTF-8", "email,n\xE4me\n", csvbatch.Options{}, csvbatch.ErrEncoding},
		{"UTF-16 with BOM", "\xFF\xFEe\x00m\x00a\x00i\x00l\x00\n\x00", csvbatch.Options{}, csvbatch.ErrEncoding},
		{"UTF-16 without BOM", "e\x00m\x00a\x00i\x00l\x00\n\x00", csvbatch.Options{}, csvbatch.ErrEncoding},
		{"xlsx", "PK\x03\x04\x14\x00\x06\x00", csvbatch.Options{}, csvbatch.ErrEncoding},
		{"xls", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", csvbatch.Options{}, csvbatch.ErrEncoding},
		{"two email columns", "Email,E-Mail\n", csvbatch.Options{}, csvbatch.ErrDuplicateColumn},
		{"two custom columns of one name", "email,Notes, notes\n", csvbatch.Options{}, csvbatch.ErrDuplicateColumn},
		{"required column missing", "email\n", csvbatch.Options{Require: []string{"given name"}}, csvbatch.ErrMissingColumn},
		{"required custom column missing", "email\n", csvbatch.Options{Require: []string{"department"}}, csvbatch.ErrMissingColumn},
		{"bare quote in header", "email,na\"me\n", csvbatch.Options{}, csvbatch.ErrHeader},
		{"control character in header", "email,\"na\x01me\"\n", csvbatch.Options{}, csvbatch.ErrHeader},
		{"CR line endings", "email\rname\ralice@example.com\r", csvbatch.Options{}, csvbatch.ErrHeader},
		{"header too long", "email,aaaaaaaaaaaaaaaaaaaaaaaaa\n", csvbatch.Options{MaxRecordBytes: 16}, csvbatch.ErrHeader},
		{"quote in header never closed", "email,\"name\nalice@example.com,x\n", csvbatch.Options{}, csvbatch.ErrUnclosedQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := csvbatch.NewReader(strings.NewReader(tt.input), tt.opts)
			var e *csvbatch.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &e) {
				t.Fatalf("NewReader(%q) = %v, %v; want an *Error with %v", tt.input, r, err, tt.want)
			}
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return r < ' ' }) {
				t.Errorf("NewReader(%q) error %q holds a control character", tt.input, err)
			}
		})
	}

	if _, err := csvbatch.NewReader(strings.NewReader("email\n"), csvbatch.Options{MaxRecordBytes: -1}); err == nil {
		t.Errorf("NewReader with MaxRecordBytes -1: error = nil, want one")
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	errBroken := errors.New("connection reset")
	// More than NewReader looks at, so that it succeeds and rows come
	// before the error.
	var data strings.Builder
	data.WriteString("email\n")
	const rows = 5000
	for i := range rows {
		fmt.Fprintf(&data, "user%d@example.com\n", i)
	}
	data.WriteString("bob@exa")
	r, err := csvbatch.NewReader(&failingReader{data.String(), errBroken}, csvbatch.Options{})
	if err != nil {
		t.Fatalf("NewReader error = %v", err)
	}
	for i := range rows {
		if row, err := r.Next(); err != nil || row.Problem != nil {
			t.Fatalf("Next() #%d = %v, %v; want a row", i, toRow(row), err)
		}
	}
	_, err = r.Next()
	var e *csvbatch.Error
	if !errors.Is(err, errBroken) || errors.As(err, &e) {
		t.Errorf("Next() error = %v, want %v not in an *Error", err, errBroken)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("Next() again = %v, want %v", again, err)
	}

	// A short file that fails fails in NewReader.
	_, err = csvbatch.NewReader(&failingReader{"email\nalice@example.com\n", errBroken}, csvbatch.Options{})
	if !errors.Is(err, errBroken) || errors.As(err, &e) {
		t.Errorf("NewReader error = %v, want %v not in an *Error", err, errBroken)
	}
}

// TestCSVReaderContinuesAfterParseError pins down the encoding/csv
// behaviour the package relies on: after a ParseError, the next Read starts
// at the line after the bad one.
func TestCSVReaderContinuesAfterParseError(t *testing.T) {
	c := csv.NewReader(strings.NewReader("a,b\nc,d\"e\n\"f\"g,h\ni,j\n"))
	c.FieldsPerRecord = -1
	c.ReuseRecord = true
	var got []string
	for {
		rec, err := c.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			got = append(got, fmt.Sprintf("error on line %d", pe.Line))
			continue
		}
		if err != nil {
			t.Fatalf("Read() error = %v", err)
		}
		got = append(got, strings.Join(rec, "|"))
	}
	want := []string{"a|b", "error on line 2", "error on line 3", "i|j"}
	if !equalStrings(got, want) {
		t.Errorf("records = %q, want %q", got, want)
	}
}

func TestReasonString(t *testing.T) {
	want := map[csvbatch.Reason]string{
		csvbatch.Malformed:        "malformed row",
		csvbatch.InvalidMailbox:   "invalid mailbox",
		csvbatch.DuplicateInFile:  "duplicate in file",
		csvbatch.MissingField:     "missing required field",
		csvbatch.InvalidName:      "invalid name",
		csvbatch.AlreadyInvited:   "already invited or active",
		csvbatch.DomainNotAllowed: "domain not allowed",
		0:                         "Reason(0)",
		99:                        "Reason(99)",
	}
	for r, s := range want {
		if got := r.String(); got != s {
			t.Errorf("Reason(%d).String() = %q, want %q", int(r), got, s)
		}
	}
}
