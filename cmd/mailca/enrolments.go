package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/enrol"
)

func runEnrolments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("enrolments", `Usage: mailca enrolments [--dir DIR] [--state S] [--policy NAME] [--limit N] [--before ID]

Lists enrolments, newest first. States: invited, submitted, approved,
issued, expired, cancelled, rejected, revoked. For the next page, pass the
last ID shown as --before.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	state := fs.String("state", "", "only enrolments in this `state`")
	policy := fs.String("policy", "", "only enrolments under this `policy`")
	limit := fs.Int("limit", 50, "at most `N` enrolments")
	before := fs.Int64("before", 0, "only enrolments with an ID below `ID`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *state != "" && !validState(*state) {
		return usageError(fs, fmt.Sprintf("unknown state %q", *state))
	}
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	list, err := in.Enrol.Enrolments(ctx, enrol.Filter{State: enrol.State(*state), Policy: *policy, Limit: *limit, Before: *before})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPOLICY\tMAILBOX\tNAME\tUPDATED\tSERIAL")
	for _, e := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.State, e.Policy, e.Mailbox, printableName(e.GivenName+" "+e.Surname),
			e.UpdatedAt.Format("2006-01-02 15:04"), e.Serial)
	}
	return tw.Flush()
}

func validState(s string) bool {
	for _, st := range enrol.States {
		if string(st) == s {
			return true
		}
	}
	return false
}

// printableName escapes control characters in text typed by users, so
// that a name can never move the terminal's cursor or add a line.
func printableName(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// onEnrolment runs a command that acts on one enrolment given by ID: it
// parses the flags (addFlags may add some), opens the data directory
// without the CA key, and calls act.
func onEnrolment(ctx context.Context, name, synopsis string, args []string, stderr io.Writer,
	addFlags func(*flag.FlagSet), act func(in *datadir.Instance, id int64) error) error {
	fs := newFlags(name, synopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	if addFlags != nil {
		addFlags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	id, err := enrolmentID(fs)
	if err != nil {
		return err
	}
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	return act(in, id)
}

func runApprove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var as *string
	return onEnrolment(ctx, "approve", `Usage: mailca approve [--dir DIR] [--as NAME] ID

Approves a submitted application. When the policy needs several approvers,
each distinct --as counts once; the activation link goes to the applicant
when enough have approved.
`, args, stderr, func(fs *flag.FlagSet) {
		as = fs.String("as", "cli", "approver `name` recorded in the audit log")
	}, func(in *datadir.Instance, id int64) error {
		if _, err := in.Enrol.Approve(ctx, "cli:"+*as, id); err != nil {
			return err
		}
		e, err := in.Enrol.Enrolment(ctx, id)
		if err != nil {
			return err
		}
		if e.State == enrol.Approved {
			fmt.Fprintf(stdout, "Approved enrolment %d: the activation link is on its way to %s.\n", e.ID, e.Mailbox)
		} else {
			fmt.Fprintf(stdout, "Recorded approval of enrolment %d; %d approver(s) so far.\n", e.ID, len(e.Approvers))
		}
		return nil
	})
}

func runReject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var reason, as *string
	return onEnrolment(ctx, "reject", `Usage: mailca reject [--dir DIR] --reason TEXT ID

Rejects a submitted application. The reason is sent to the applicant.
`, args, stderr, func(fs *flag.FlagSet) {
		reason = fs.String("reason", "", "why, in words the applicant will read (required)")
		as = fs.String("as", "cli", "approver `name` recorded in the audit log")
	}, func(in *datadir.Instance, id int64) error {
		if err := in.Enrol.Reject(ctx, "cli:"+*as, id, *reason); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Rejected enrolment %d.\n", id)
		return nil
	})
}

func runResend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return onEnrolment(ctx, "resend", `Usage: mailca resend [--dir DIR] ID

Sends a fresh link for an enrolment waiting on its user: a new invitation
(also for one that expired unused) or a new activation link. The previous
link stops working.
`, args, stderr, nil, func(in *datadir.Instance, id int64) error {
		if err := in.Enrol.Resend(ctx, "cli", id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Sent a new link for enrolment %d.\n", id)
		return nil
	})
}

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var reason *string
	return onEnrolment(ctx, "cancel", `Usage: mailca cancel [--dir DIR] [--reason TEXT] ID

Withdraws an enrolment that has not been issued; its links stop working.
`, args, stderr, func(fs *flag.FlagSet) {
		reason = fs.String("reason", "", "why (kept in the audit log)")
	}, func(in *datadir.Instance, id int64) error {
		if err := in.Enrol.Cancel(ctx, "cli", id, *reason); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Cancelled enrolment %d.\n", id)
		return nil
	})
}

func enrolmentID(fs *flag.FlagSet) (int64, error) {
	if fs.NArg() != 1 {
		return 0, usageError(fs, "give one enrolment ID")
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not an enrolment ID", fs.Arg(0))
	}
	return id, nil
}
