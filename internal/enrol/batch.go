package enrol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
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
	BatchID     int64 // the batch the row belongs to
	Line        int
	Email       string // as found, made printable
	Invited     bool
	EnrolmentID int64
	Reason      string // csvbatch reason name; empty when invited
	Detail      string

	pending *Enrolment // to be stored, while the chunk is being written
}

// InviteCSV invites every good row of a CSV file under the named policy
// and calls report for each row, in file order, once the row's outcome is
// committed. Bad rows are reported and skipped; good rows go on. Rows are
// committed in chunks, so a crash leaves a prefix of the file invited, and
// uploading the same file again invites only the rest: a person with a live
// enrolment is never invited twice. Each chunk's report lines are stored
// with its invitations (Tx.InsertBatchRows), so after a crash the stored
// report holds exactly the lines whose outcome committed.
//
// Cancelling ctx stops the import between chunks: the chunk being written
// commits, and the batch is marked failed with the cause of the
// cancellation (ErrShutdown when the process stops) as its error.
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
		if ctx.Err() != nil {
			cause := context.Cause(ctx)
			s.finishBatch(ctx, b, "failed", cause.Error(), batchError(cause))
			return b, fmt.Errorf("enrol: batch %d stopped after row %d: %w", b.ID, b.Rows, cause)
		}
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
		committed := *b
		// A chunk takes milliseconds: it commits even when ctx is
		// cancelled meanwhile, and the loop stops before the next one.
		err := s.store.InTx(context.WithoutCancel(ctx), func(tx Tx) error {
			*b = committed // the counts of the transaction that commits
			results = s.inviteChunk(actor, p, b, rows, requireCustom, results[:0])
			return s.storeChunk(tx, actor, p, b, results)
		})
		if err != nil {
			*b = committed
			err = fmt.Errorf("enrol: batch %d stopped at line %d: %w", b.ID, rows[0].Line, err)
			s.finishBatch(ctx, b, "failed", err.Error(), batchError(err))
			return b, err
		}
		for range b.Invited - committed.Invited {
			s.obs.Invited()
		}
		for _, res := range results {
			if err := report(res); err != nil {
				s.finishBatch(ctx, b, "failed", "report: "+err.Error(), batchError(err))
				return b, err
			}
		}
	}
	if readErr != nil {
		err := errs.Wrap(errs.Invalid, readErr, fmt.Sprintf("the file is broken after row %d; the rows before it were processed", b.Rows))
		s.finishBatch(ctx, b, "failed", readErr.Error(), batchError(err))
		return b, err
	}
	return b, s.finishBatch(ctx, b, "done", fmt.Sprintf("%d rows, %d invited, %d refused", b.Rows, b.Invited, b.Refused), "")
}

// ErrShutdown is the cause to cancel an import's context with
// (context.WithCancelCause) when the process stops: InviteCSV marks the
// batch failed with its message.
var ErrShutdown = errs.E(errs.Conflict, "interrupted by shutdown: upload the file again to invite the rest")

// StalledBatchError is the error of a batch that FailStalledBatches
// marked failed.
const StalledBatchError = "interrupted: the process stopped; upload the file again to invite the rest"

// batchError returns the user-safe error a failed batch shows for err.
func batchError(err error) string {
	switch {
	case errs.KindOf(err) != errs.Internal:
		return errs.Message(err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted: upload the file again to invite the rest"
	}
	return "the import stopped with an internal error; the rows reported here were processed"
}

// FailStalledBatches marks failed every batch still importing that has
// committed nothing for BatchStall: the process importing it stopped (a
// crash, a kill). Each gets StalledBatchError as its error and a
// batch.failed audit event, in the transaction that marks it; run by
// several nodes at once, each batch is marked by exactly one. It returns
// how many it marked.
func (s *Service) FailStalledBatches(ctx context.Context) (int, error) {
	now := s.now()
	var n int
	err := s.store.InTx(ctx, func(tx Tx) error {
		ids, err := tx.FailStalledBatches(now.Add(-BatchStall), now, StalledBatchError)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		slices.Sort(ids)
		events := make([]Event, len(ids))
		for i, id := range ids {
			events[i] = Event{Actor: "system", Action: "batch.failed", Object: "batch:" + strconv.FormatInt(id, 10), Detail: StalledBatchError}
		}
		n = len(ids)
		return tx.AuditAll(events)
	})
	if err != nil {
		return 0, fmt.Errorf("enrol: failing stalled batches: %w", err)
	}
	return n, nil
}

// inviteChunk checks each row of a chunk and returns its results, with
// pending set on the rows to invite.
func (s *Service) inviteChunk(actor string, p *Policy, b *Batch, rows []csvbatch.Row, requireCustom []string, results []RowResult) []RowResult {
	for _, row := range rows {
		res := RowResult{BatchID: b.ID, Line: row.Line, Email: csvbatch.Printable(row.RawEmail)}
		switch {
		case row.Problem != nil:
			res.Reason, res.Detail = row.Problem.Reason.String(), row.Problem.Detail
		case missingCustom(row, requireCustom) != "":
			res.Reason, res.Detail = csvbatch.MissingField.String(), missingCustom(row, requireCustom)
		default:
			e, err := s.newInvitation(actor, p, Invitee{Email: row.Email.String(), GivenName: row.GivenName, Surname: row.Surname, Fields: customFields(row)}, b.ID)
			var ierr *InviteError
			if errors.As(err, &ierr) {
				res.Reason, res.Detail = ierr.Reason, ierr.Detail
			} else {
				res.pending = e
			}
		}
		results = append(results, res)
	}
	return results
}

// storeChunk stores the pending invitations of results with their links,
// emails and audit events, a few multi-row statements for the whole chunk,
// and updates the batch counts.
func (s *Service) storeChunk(tx Tx, actor string, p *Policy, b *Batch, results []RowResult) error {
	var pending []*Enrolment
	for _, r := range results {
		if r.pending != nil {
			pending = append(pending, r.pending)
		}
	}
	stored, err := tx.InsertEnrolments(pending)
	if err != nil {
		return err
	}
	links := make([]Link, 0, len(pending))
	mails := make([]Mail, 0, len(pending))
	events := make([]Event, 0, len(pending))
	k := 0
	for i := range results {
		r := &results[i]
		if r.pending == nil {
			b.Refused++
			continue
		}
		e := r.pending
		r.pending = nil
		if !stored[k] {
			// Rare: the person is already enrolled, or was invited and let
			// the link lapse, in which case the new invitation replaces it.
			if err := s.insertEnrolment(tx, e); errors.Is(err, ErrDuplicate) {
				k++
				r.Reason, r.Detail = "already invited or active", e.Mailbox
				b.Refused++
				continue
			} else if err != nil {
				return err
			}
		}
		k++
		l, m := s.linkMail(e, p, PurposeInvitation, "invitation", e.ExpiresAt)
		links, mails, events = append(links, l), append(mails, m), append(events, inviteEvent(actor, p, e))
		r.Invited, r.EnrolmentID = true, e.ID
		b.Invited++
	}
	b.Rows += len(results)
	if err := tx.InsertBatchRows(b.ID, results); err != nil {
		return err
	}
	if err := tx.InsertLinks(links); err != nil {
		return err
	}
	if err := tx.EnqueueAll(mails); err != nil {
		return err
	}
	if err := tx.AuditAll(events); err != nil {
		return err
	}
	b.UpdatedAt = s.now()
	return tx.UpdateBatch(b)
}

// finishBatch records the end of an import: its state and error (msg, for
// its page) with the audit event (detail, for the log of events).
func (s *Service) finishBatch(ctx context.Context, b *Batch, state, detail, msg string) error {
	b.State, b.DoneAt, b.Error = state, s.now(), msg
	b.UpdatedAt = b.DoneAt
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
