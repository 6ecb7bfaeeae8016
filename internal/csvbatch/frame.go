package csvbatch

import (
	"bufio"
	"fmt"
	"io"
)

// csv.Reader cannot bound a record: a long line, or a quote that is never
// closed, makes it read the rest of the file into memory. So a framer finds
// where each record ends, holding at most MaxRecordBytes of it, and only a
// record known to be complete and short enough is handed to csv.Reader.
//
// The framer's states mirror the decisions csv.Reader makes with LazyQuotes
// and TrimLeadingSpace off, so the two always agree on where a record ends;
// Reader checks that they do after every record.
const (
	atFieldStart = iota // at the start of a field, where a quote opens a quoted field
	inUnquoted          // in a field that did not start with a quote
	inQuoted            // in a quoted field
	afterQuote          // after a quote in a quoted field: it closes the field or starts a pair
	afterQuoteCR        // after a closing quote and a CR: only LF may follow
	inBroken            // after a syntax error, which csv.Reader reports; the record ends with the line
)

type framer struct {
	br    *bufio.Reader
	delim byte
	max   int
	line  int    // lines read so far
	buf   []byte // the current record, reused
	eof   bool
}

// frame is one record as found in the file.
type frame struct {
	start, end int // first and last line
	// data is the record, always ending in LF even when the file does not.
	// It is nil when the record is longer than the limit, and valid only
	// until the next call to the framer.
	data    []byte
	tooLong bool
}

// blank reports whether the record is an empty line, which csv.Reader would
// skip.
func (fr frame) blank() bool {
	return len(fr.data) == 1 || len(fr.data) == 2 && fr.data[0] == '\r'
}

// next returns the next record that is not a blank line. At the end of the
// input it returns io.EOF. Any other error ends reading: an *Error with
// ErrUnclosedQuote, or the underlying reader's error, wrapped.
func (f *framer) next() (frame, error) {
	for {
		fr, err := f.scan()
		if err != nil || !fr.blank() {
			return fr, err
		}
	}
}

func (f *framer) scan() (frame, error) {
	if f.eof {
		return frame{}, io.EOF
	}
	fr := frame{start: f.line + 1}
	f.buf = f.buf[:0]
	st := atFieldStart
	size := 0  // octets in the record so far
	qLine := 0 // line of the opening quote of the current quoted field
	for {
		// ReadSlice returns a line, or a buffer-full piece of one, without
		// copying; only what fits the limit is copied into f.buf.
		chunk, err := f.br.ReadSlice('\n')
		for _, c := range chunk {
			size++
			switch st {
			case atFieldStart:
				switch c {
				case '"':
					st, qLine = inQuoted, f.line+1
				case f.delim, '\n':
				default:
					st = inUnquoted
				}
			case inUnquoted:
				switch c {
				case f.delim:
					st = atFieldStart
				case '"':
					st = inBroken // csv.ErrBareQuote
				}
			case inQuoted:
				if c == '"' {
					st = afterQuote
				}
			case afterQuote:
				switch c {
				case '"':
					st = inQuoted
				case f.delim:
					st = atFieldStart
				case '\r':
					st = afterQuoteCR
				case '\n':
				default:
					st = inBroken // csv.ErrQuote
				}
			case afterQuoteCR:
				if c != '\n' {
					st = inBroken // csv.ErrQuote
				}
			}
			if c == '\n' {
				f.line++
			}
			if st == inQuoted && size > f.max {
				f.eof = true
				return frame{}, &Error{Line: qLine, Err: ErrUnclosedQuote,
					Detail: fmt.Sprintf("the quoted field opened on line %d is still open after %d octets of its record; check for a missing or extra \"", qLine, f.max)}
			}
		}
		if !fr.tooLong {
			if size > f.max {
				fr.tooLong, f.buf = true, f.buf[:0]
			} else {
				f.buf = append(f.buf, chunk...)
			}
		}
		if n := len(chunk); n > 0 && chunk[n-1] == '\n' && st != inQuoted {
			fr.end = f.line
			if !fr.tooLong {
				fr.data = f.buf
			}
			return fr, nil
		}
		switch err {
		case nil, bufio.ErrBufferFull:
			// An LF inside a quoted field, or a line longer than the buffer.
		case io.EOF:
			f.eof = true
			if size == 0 {
				return frame{}, io.EOF
			}
			if st == inQuoted {
				return frame{}, &Error{Line: qLine, Err: ErrUnclosedQuote,
					Detail: fmt.Sprintf("the quoted field opened on line %d is still open at the end of the file; check for a missing or extra \"", qLine)}
			}
			// The last line has no line ending. csv.Reader drops a CR there,
			// as it does the CR of a CR LF, so adding LF changes nothing.
			fr.end = f.line + 1
			if !fr.tooLong {
				f.buf = append(f.buf, '\n')
				fr.data = f.buf
			}
			return fr, nil
		default:
			f.eof = true
			return frame{}, fmt.Errorf("csvbatch: reading line %d: %w", f.line+1, err)
		}
	}
}

// feed gives csv.Reader one record at a time. If csv.Reader asks for more
// than the record, the framer and it disagree about where the record ends,
// and over records it.
type feed struct {
	b    []byte
	over bool
}

func (f *feed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		f.over = true
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}
