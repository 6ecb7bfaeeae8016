package audit

import (
	"bufio"
	"encoding/csv"
	"encoding/hex"
	"io"
	"strconv"
	"time"

	"github.com/mailca/mailca/internal/csvbatch"
)

// WriteCSV writes the events scan yields, in its order, as CSV with the
// columns seq, time, actor, action, object, detail and hash: a byte order
// mark and CR LF line ends (Excel needs the mark to read UTF-8), times in
// RFC 3339 UTC, and the cells a spreadsheet would run as formulas
// neutralised (csvbatch.SafeCell). scan calls its argument once per event
// and stops at its first error.
func WriteCSV(w io.Writer, scan func(func(Record) error) error) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("\uFEFF")
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	cw.Write([]string{"seq", "time", "actor", "action", "object", "detail", "hash"})
	err := scan(func(r Record) error {
		return cw.Write([]string{
			strconv.FormatInt(r.Seq, 10),
			r.At.UTC().Format(time.RFC3339Nano),
			csvbatch.SafeCell(r.Actor),
			csvbatch.SafeCell(r.Action),
			csvbatch.SafeCell(r.Object),
			csvbatch.SafeCell(r.Detail),
			hex.EncodeToString(r.Hash),
		})
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}
