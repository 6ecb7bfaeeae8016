package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

const auditSynopsis = `Usage: mailca audit verify [--dir DIR] [--expect-head HEX] [--expect-count N]
       mailca audit export [--dir DIR] [--since TIME] [--until TIME] [--actor A] [--action X] [--object PREFIX]

The audit log records every step of every enrolment and batch, and each
export of the log, each event chained to the one before by a SHA-256 hash.

verify reads the whole log in order and checks the chain. It prints the
number of events and the head (the hash of the last event) and exits 0, or
names the first event that was edited, deleted or moved and exits 1.
Deleting the last events leaves a shorter chain that still verifies: keep
the printed head somewhere the database's administrators cannot change (a
ticket, write-once storage) and pass it back with --expect-head and
--expect-count, which fail unless the log still reaches that head.

export writes the selected events, oldest first, as CSV (seq, time, actor,
action, object, detail, hash) for a spreadsheet: a cell that starts with
=, +, -, @, tab or CR gets a leading apostrophe so it is never run as a
formula. Times are RFC 3339 (2025-01-31T00:00:00Z). The export is itself
recorded in the audit log.
`

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags("audit", auditSynopsis, stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return errUsage
	}
	switch sub, args := args[0], args[1:]; sub {
	case "verify":
		return runAuditVerify(ctx, args, stdout, stderr)
	case "export":
		return runAuditExport(ctx, args, stdout, stderr)
	default:
		fs := newFlags("audit", auditSynopsis, stderr)
		return usageError(fs, fmt.Sprintf("unknown subcommand %q", sub))
	}
}

func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit verify", auditSynopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	head := fs.String("expect-head", "", "fail unless the log passes through the event with this hash (`HEX`), as printed by an earlier verify")
	count := fs.Int64("expect-count", 0, "fail unless the log has at least `N` events (and, with --expect-head, event N has that hash)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	check := audit.AnchorCheck{Anchor: audit.Anchor{Count: *count}}
	if *head != "" {
		h, err := audit.ParseHead(*head)
		if err != nil {
			return usageError(fs, err.Error())
		}
		check.Anchor.Head = h
	}
	if *count < 0 {
		return usageError(fs, "--expect-count must not be negative")
	}
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	var v audit.Verifier
	err = in.DB.AuditEvents(ctx, func(r audit.Record) error {
		if err := v.Next(r); err != nil {
			return err
		}
		check.Next(r)
		return nil
	})
	if err != nil {
		return err
	}
	if err := check.Err(); err != nil {
		return fmt.Errorf("%w (the log has %d events, head %x)", err, v.Count(), v.Head())
	}
	fmt.Fprintf(stdout, "audit log intact: %d events, head %x\n", v.Count(), v.Head())
	return nil
}

func runAuditExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit export", auditSynopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	since := fs.String("since", "", "only events at or after this `time` (RFC 3339)")
	until := fs.String("until", "", "only events before this `time` (RFC 3339)")
	actor := fs.String("actor", "", "only events by this `actor` (cli, admin:ann@example.com, user:bob@example.com, ...)")
	action := fs.String("action", "", "only events with this `action` (enrolment.invite, ...)")
	object := fs.String("object", "", "only events whose object starts with `PREFIX` (enrolment:42, batch:)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q := store.AuditQuery{Actor: *actor, Action: *action, Object: *object}
	var err error
	if q.Since, err = parseTimeFlag(*since); err != nil {
		return usageError(fs, "--since: "+err.Error())
	}
	if q.Until, err = parseTimeFlag(*until); err != nil {
		return usageError(fs, "--until: "+err.Error())
	}
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()

	// Recorded before any event leaves the database, so that an export that
	// could not be recorded does not happen.
	err = in.DB.InTx(ctx, func(tx enrol.Tx) error {
		return tx.Audit(enrol.Event{Actor: "cli", Action: "audit.export", Object: "audit", Detail: q.Describe()})
	})
	if err != nil {
		return fmt.Errorf("recording the export: %w", err)
	}

	return audit.WriteCSV(stdout, func(fn func(audit.Record) error) error { return in.DB.AuditScan(ctx, q, fn) })
}

func parseTimeFlag(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2025-01-31T00:00:00Z", s)
	}
	return t, nil
}
