package csvbatch

import (
	"errors"
	"strconv"
	"strings"
)

// Reason says why a row of a batch is not invited. The batch report uses one
// set of reasons for all rows, so the reasons that only the caller can
// decide, AlreadyInvited and DomainNotAllowed, are defined here too.
type Reason int

const (
	// Malformed means the record could not be read as a row: a CSV syntax
	// error such as a stray quote, a field count that differs from the
	// header's, a record longer than Options.MaxRecordBytes, text that is not
	// UTF-8, or a control character in a custom column.
	Malformed Reason = iota + 1
	// InvalidMailbox means the email field is not an address that
	// mailbox.Parse accepts. Problem.Err is the *mailbox.Error.
	InvalidMailbox
	// DuplicateInFile means an earlier row of the same file, one without a
	// problem, has the same address as far as mailbox.Address.Key can tell.
	DuplicateInFile
	// MissingField means the email field, or a column named in
	// Options.Require, is empty.
	MissingField
	// InvalidName means the given name or surname holds a control character,
	// such as the CR LF of a header-injection attempt ("Eve\r\nBcc: ...").
	InvalidName
	// AlreadyInvited means the address already has an open invitation or an
	// active certificate. The Reader never reports it; the caller does.
	AlreadyInvited
	// DomainNotAllowed means the policy does not allow the address's domain.
	// The Reader never reports it; the caller does.
	DomainNotAllowed
)

// reasonNames are the short names String returns. They appear in reports
// that administrators keep and filter on, so they do not change.
var reasonNames = [...]string{
	Malformed:        "malformed row",
	InvalidMailbox:   "invalid mailbox",
	DuplicateInFile:  "duplicate in file",
	MissingField:     "missing required field",
	InvalidName:      "invalid name",
	AlreadyInvited:   "already invited or active",
	DomainNotAllowed: "domain not allowed",
}

// String returns a short, stable name for r, such as "invalid mailbox",
// suitable for the reason column of a report.
func (r Reason) String() string {
	if r <= 0 || int(r) >= len(reasonNames) {
		return "Reason(" + strconv.Itoa(int(r)) + ")"
	}
	return reasonNames[r]
}

// Problem says why a row is not invited.
type Problem struct {
	Reason Reason
	// Detail explains the problem to the administrator. Any text from the
	// file in it is quoted or escaped, so it is safe to show.
	Detail string
	// Err is the underlying error when there is one: the *mailbox.Error for
	// InvalidMailbox, csv.ErrQuote or csv.ErrBareQuote for a CSV syntax
	// error. It is nil otherwise.
	Err error
}

// Error returns the reason and the detail.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return "csvbatch: " + p.Reason.String()
	}
	return "csvbatch: " + p.Reason.String() + ": " + p.Detail
}

// Unwrap returns p.Err.
func (p *Problem) Unwrap() error { return p.Err }

// Errors that end reading a file. NewReader and Reader.Next return them
// inside an *Error, so test for them with errors.Is.
var (
	// ErrEmpty means the file holds no header line: it is empty, or holds
	// only a byte order mark and blank lines.
	ErrEmpty = errors.New("csvbatch: file is empty")
	// ErrEncoding means the file is not UTF-8 text: the header is not valid
	// UTF-8, or the file is UTF-16 (Excel's "Unicode Text"), or it is a
	// spreadsheet workbook rather than a CSV export.
	ErrEncoding = errors.New("csvbatch: file is not UTF-8 CSV")
	// ErrHeader means the header line cannot be read: a CSV syntax error, a
	// control character in a column name, a header longer than
	// Options.MaxRecordBytes, or lines ended by CR alone (old Mac format).
	ErrHeader = errors.New("csvbatch: header line cannot be read")
	// ErrNoEmailColumn means no column of the header is an email column.
	ErrNoEmailColumn = errors.New("csvbatch: no email column")
	// ErrDuplicateColumn means two columns have the same meaning, such as
	// "Email" and "E-Mail", or the same name.
	ErrDuplicateColumn = errors.New("csvbatch: two columns have the same name")
	// ErrMissingColumn means a column named in Options.Require is not in the
	// header.
	ErrMissingColumn = errors.New("csvbatch: required column missing")
	// ErrUnclosedQuote means a quoted field was still open at the end of the
	// file, or after Options.MaxRecordBytes octets of its record. Only a
	// quote can hide where records end, so after it no row can be trusted.
	ErrUnclosedQuote = errors.New("csvbatch: quoted field not closed")
)

// Error is a problem with the file as a whole, after which nothing more is
// read. Its message is safe to show to the administrator who uploaded the
// file: text from the file in it is quoted.
//
// Errors from the underlying io.Reader are not wrapped in an *Error, so a
// caller can tell a bad file (an *Error) from a failed upload.
type Error struct {
	// Line is the line of the file where the problem starts, or 0.
	Line int
	// Err is one of the Err values of this package.
	Err error
	// Detail says more, for the administrator; it may be empty.
	Detail string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Line > 0 {
		b.WriteString(" on line ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }
