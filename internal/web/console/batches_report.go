package console

import (
	"bufio"
	"fmt"
	"net/http"

	"github.com/mailca/mailca/internal/csvbatch"
	"github.com/mailca/mailca/internal/store"
)

// batchReportCSV downloads a batch's report: one line per line of the
// file (line, email, outcome, reason), written by csvbatch.ReportWriter,
// which neutralises cells a spreadsheet would run as formulas. Rows are
// streamed from the database, never held whole.
//
// Pattern: GET /console/batches/{id}/report.csv.
func (c *Console) batchReportCSV(w http.ResponseWriter, r *http.Request) {
	b, err := c.batch(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="batch-%d-report.csv"`, b.ID))
	bw := bufio.NewWriter(w)
	rw := csvbatch.NewReportWriter(bw)
	err = c.cfg.Store.ScanBatchRows(r.Context(), b.ID, func(row store.BatchRow) error {
		outcome, reason := "invited", ""
		if !row.Invited {
			outcome, reason = "refused", row.Reason
			if row.Detail != "" {
				reason += ": " + row.Detail
			}
		}
		return rw.Write(row.Line, row.Email, outcome, reason)
	})
	if err == nil {
		err = rw.Flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The status is sent; the download ends short.
		c.log.ErrorContext(r.Context(), "console: batch report", "batch", b.ID, "err", err)
	}
}
