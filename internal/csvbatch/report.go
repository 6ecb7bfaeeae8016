package csvbatch

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxPrintable bounds what Printable returns, so that a 64 KiB field does
// not end up whole in every line of a report or a page.
const maxPrintable = 256

// Printable returns s made safe to show: invalid UTF-8 octets appear as
// \xNN; tab, CR and LF as \t, \r and \n; other control characters, the
// Unicode line and paragraph separators and the bidirectional controls as
// \uNNNN; a backslash as \\. Other characters are kept, so a well-formed
// address or name comes out unchanged. A result longer than 256 octets is
// cut on a character boundary and "..." added.
func Printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02X`, s[i])
		case r == '\\':
			piece = `\\`
		case r == '\t':
			piece = `\t`
		case r == '\r':
			piece = `\r`
		case r == '\n':
			piece = `\n`
		case isBadNameRune(r):
			piece = fmt.Sprintf(`\u%04X`, r)
		default:
			piece = s[i : i+size]
		}
		if b.Len()+len(piece) > maxPrintable {
			b.WriteString("...")
			break
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}

// ReportWriter writes the report of a batch as CSV, one line per row, with
// the columns line, email, outcome and reason. The file starts with a UTF-8
// byte order mark, which Excel needs to read UTF-8, and uses CR LF line
// endings.
//
// Every cell is passed through Printable, and a cell that starts with =, +,
// -, @, tab or CR gets a leading apostrophe, so that a spreadsheet shows it
// as text rather than running it as a formula ("CSV injection"). An address
// such as "-bob@example.com" therefore appears as "'-bob@example.com".
type ReportWriter struct {
	w       io.Writer
	cw      *csv.Writer
	started bool
	err     error
	rec     [4]string
}

// NewReportWriter returns a ReportWriter that writes to w. Nothing is
// written until the first call to Write or Flush.
func NewReportWriter(w io.Writer) *ReportWriter {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	return &ReportWriter{w: w, cw: cw}
}

// Write adds a line to the report. A line number of 0 or less leaves the
// line cell empty, for a message about the file as a whole. Writes are
// buffered: call Flush at the end. The error is from the underlying writer.
func (w *ReportWriter) Write(line int, email, outcome, reason string) error {
	if err := w.start(); err != nil {
		return err
	}
	w.rec[0] = ""
	if line > 0 {
		w.rec[0] = strconv.Itoa(line)
	}
	w.rec[1], w.rec[2], w.rec[3] = cell(email), cell(outcome), cell(reason)
	if err := w.cw.Write(w.rec[:]); err != nil {
		return fmt.Errorf("csvbatch: writing report: %w", err)
	}
	return nil
}

// Flush writes any buffered data, and the header if no line was written,
// to the underlying writer.
func (w *ReportWriter) Flush() error {
	if err := w.start(); err != nil {
		return err
	}
	w.cw.Flush()
	if err := w.cw.Error(); err != nil {
		return fmt.Errorf("csvbatch: writing report: %w", err)
	}
	return nil
}

// start writes the byte order mark and the header once.
func (w *ReportWriter) start() error {
	if w.started {
		return w.err
	}
	w.started = true
	// Nothing is buffered yet, so the mark can go straight to w.
	if _, err := io.WriteString(w.w, "\uFEFF"); err != nil {
		w.err = fmt.Errorf("csvbatch: writing report: %w", err)
		return w.err
	}
	if err := w.cw.Write([]string{"line", "email", "outcome", "reason"}); err != nil {
		w.err = fmt.Errorf("csvbatch: writing report: %w", err)
	}
	return w.err
}

// cell makes s printable and neutralises a leading formula character.
func cell(s string) string {
	return SafeCell(Printable(s))
}
