package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/outbox"
)

func runOutbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("outbox", `Usage: mailca outbox [--dir DIR] [--state pending|sent|failed] [--limit N]

Lists the email outbox, newest first: what is waiting, what was sent (with
its Message-ID), and what failed for good with the mail server's reason.
Message contents are not shown: they hold personal links.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	state := fs.String("state", "", "only messages in this `state`")
	limit := fs.Int("limit", 50, "at most `N` messages")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *state {
	case "", "pending", "sent", "failed":
	default:
		return usageError(fs, fmt.Sprintf("unknown state %q", *state))
	}
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	counts, err := in.DB.Counts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pending %d, sent %d, failed %d\n", counts["pending"], counts["sent"], counts["failed"])
	msgs, err := in.DB.Messages(ctx, outbox.Filter{State: *state, Limit: *limit})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tTEMPLATE\tTO\tATTEMPTS\tCREATED\tMESSAGE-ID / LAST ERROR")
	for _, m := range msgs {
		last := m.MessageID
		if m.State != "sent" && m.LastError != "" {
			last = printableName(m.LastError)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.State, m.Template, m.To, m.Attempts, m.CreatedAt.Format("2006-01-02 15:04"), last)
	}
	return tw.Flush()
}
