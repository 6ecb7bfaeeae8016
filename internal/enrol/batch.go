package enrol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/csvbatch"
	"github.com/mailca/mailca/internal/errs"
)

// batchChunk is how many rows share one transaction. Large enough that the
// commit cost vanishes per row, small enough that a crash loses little work
// and the writer lock is released often for other requests.
const batchChunk = 500

// RowResult is one line of a batch report.
type RowResult struct {
	Line        int
	Email       string // as found, made printable
	Invited     bool
	EnrolmentID int64
	Reason      string // csvbatch reason name; empty when invited
	Detail      string
}

// InviteCSV invites every good row of a CSV file under the named policy
// and calls report for each row, in file order, once the row's outcome is
// committed. Bad rows are reported and skipped; good rows go on. Rows are
// committed in chunks, so a crash leaves a prefix of the file invited, and
// uploading the same file again invites only the rest: a person with a live
// enrolment is never invited twice.
func (s *Service) InviteCSV(ctx context.Context, actor, policy, filename string, r io.Reader, report func(RowResult) error) (*Batch, error) {
	p, err := s.Policy(ctx, policy)
	if err != nil {
		return nil, err
	}
	if !p.Channels.Invitation {
		return nil, errs.E(errs.Forbidden, "policy %s does not allow invitations", p.Name)
	}
	// Fields the user cannot edit must come from the file.
	var require []string
	var requireCustom []string
	for _, f := range p.Fields {
		if !f.Required || f.Editable {
			continue
		}
		switch f.Name {
		case FieldGivenName:
			require = append(require, csvbatch.ColumnGivenName)
		case FieldSurname:
			require = append(require, csvbatch.ColumnSurname)
		default:
			requireCustom = append(requireCustom, f.Name)
		}
	}
	rd, err := csvbatch.NewReader(r, csvbatch.Options{Require: require})
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "the file cannot be read as an invitation list")
	}

	b := &Batch{Policy: p.Name, Filename: filename, Actor: actor, State: "importing", CreatedAt: s.now()}
	err = s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.InsertBatch(b); err != nil {
			return err
		}
		return tx.Audit(Event{Actor: actor, Action: "batch.start", Object: "batch:" + strconv.FormatInt(b.ID, 10), Detail: "policy " + p.Name + ", file " + printable(filename)})
	})
	if err != nil {
		return nil, err
	}

	rows := make([]csvbatch.Row, 0, batchChunk)
	results := make([]RowResult, 0, batchChunk)
	var readErr error
	for done := false; !done; {
		rows = rows[:0]
		for len(rows) < batchChunk {
			row, err := rd.Next()
			if err == io.EOF {
				done = true
				break
			}
			if err != nil {
				readErr, done = err, true
				break
			}
			rows = append(rows, row)
		}
		if len(rows) == 0 {
			break
		}
		results = results[:0]
		err := s.store.InTx(ctx, func(tx Tx) error {
			results = results[:0]
			invited, refused := 0, 0
			for _, row := range rows {
				res := RowResult{Line: row.Line, Email: csvbatch.Printable(row.RawEmail)}
				if row.Problem != nil {
					res.Reason, res.Detail = row.Problem.Reason.String(), row.Problem.Detail
				} else if missing := missingCustom(row, requireCustom); missing != "" {
					res.Reason, res.Detail = csvbatch.MissingField.String(), missing
				} else {
					e, err := s.invite(tx, actor, p, Invitee{Email: row.Email.String(), GivenName: row.GivenName, Surname: row.Surname, Fields: customFields(row)}, b.ID)
					var ierr *InviteError
					switch {
					case errors.As(err, &ierr):
						res.Reason, res.Detail = ierr.Reason, ierr.Detail
					case err != nil:
						return err
					default:
						res.Invited, res.EnrolmentID = true, e.ID
					}
				}
				if res.Invited {
					invited++
				} else {
					refused++
				}
				results = append(results, res)
			}
			b.Rows += len(rows)
			b.Invited += invited
			b.Refused += refused
			return tx.UpdateBatch(b)
		})
		if err != nil {
			s.finishBatch(ctx, b, "failed", err.Error())
			return b, fmt.Errorf("enrol: batch %d stopped at line %d: %w", b.ID, rows[0].Line, err)
		}
		for _, res := range results {
			if err := report(res); err != nil {
				s.finishBatch(ctx, b, "failed", "report: "+err.Error())
				return b, err
			}
		}
	}
	if readErr != nil {
		s.finishBatch(ctx, b, "failed", readErr.Error())
		return b, errs.Wrap(errs.Invalid, readErr, fmt.Sprintf("the file is broken after row %d; the rows before it were processed", b.Rows))
	}
	return b, s.finishBatch(ctx, b, "done", fmt.Sprintf("%d rows, %d invited, %d refused", b.Rows, b.Invited, b.Refused))
}

func (s *Service) finishBatch(ctx context.Context, b *Batch, state, detail string) error {
	b.State, b.DoneAt = state, s.now()
	return s.store.InTx(context.WithoutCancel(ctx), func(tx Tx) error {
		if err := tx.UpdateBatch(b); err != nil {
			return err
		}
		return tx.Audit(Event{Actor: b.Actor, Action: "batch." + state, Object: "batch:" + strconv.FormatInt(b.ID, 10), Detail: detail})
	})
}

// customFields returns the custom columns of a row keyed as policy field
// names: "Staff ID" in the header becomes "staff_id".
func customFields(row csvbatch.Row) map[string]string {
	if len(row.Fields) == 0 {
		return nil
	}
	out := make(map[string]string, len(row.Fields))
	for k, v := range row.Fields {
		out[strings.ReplaceAll(k, " ", "_")] = v
	}
	return out
}

func missingCustom(row csvbatch.Row, names []string) string {
	f := customFields(row)
	for _, n := range names {
		if strings.TrimSpace(f[n]) == "" {
			return n + " is empty"
		}
	}
	return ""
}

// printable makes a file name safe for a log or an audit detail.
func printable(s string) string { return csvbatch.Printable(s) }
