package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/csvbatch"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/enrol"
)

func runInvite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("invite", `Usage: mailca invite [--dir DIR] [--policy NAME] FILE.csv
       mailca invite [--dir DIR] [--policy NAME] --email ADDR [--given-name G --surname S]

Invites people to enrol under a policy. A CSV file needs a header line with
an email column (email, e-mail, mail, ...); given name and surname columns
(first name, last name, ...) and any other columns are optional. Commas,
semicolons and tabs are recognised, with or without a byte order mark.

Prints one report line per row (line, email, outcome, reason) as CSV, then
the counts. Bad rows are reported and skipped; the good rows are invited.
Nobody with a live enrolment is invited again, so a file can be uploaded
twice safely.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	policy := fs.String("policy", "default", "enrolment `policy`")
	email := fs.String("email", "", "invite one `mailbox` instead of a file")
	given := fs.String("given-name", "", "given `name` of the one person invited")
	surname := fs.String("surname", "", "`surname` of the one person invited")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if (*email == "") == (fs.NArg() != 1) {
		return usageError(fs, "give one CSV file or --email")
	}
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	if *email != "" {
		e, err := in.Enrol.Invite(ctx, "cli", *policy, enrol.Invitee{Email: *email, GivenName: *given, Surname: *surname})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Invited %s (enrolment %d).\n", e.Mailbox, e.ID)
		return nil
	}

	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	report := csvbatch.NewReportWriter(stdout)
	b, err := in.Enrol.InviteCSV(ctx, "cli", *policy, filepath.Base(fs.Arg(0)), f, func(r enrol.RowResult) error {
		outcome := "invited"
		if !r.Invited {
			outcome = "refused"
		}
		reason := r.Reason
		if r.Detail != "" {
			reason += ": " + r.Detail
		}
		return report.Write(r.Line, r.Email, outcome, reason)
	})
	if ferr := report.Flush(); err == nil {
		err = ferr
	}
	if b != nil {
		fmt.Fprintf(stderr, "batch %d: %d rows, %d invited, %d refused\n", b.ID, b.Rows, b.Invited, b.Refused)
	}
	return err
}
