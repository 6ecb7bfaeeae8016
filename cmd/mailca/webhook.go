package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/webhook"
)

func runWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = `Usage: mailca webhook add [--dir DIR] --policy P --url URL
       mailca webhook list [--dir DIR]
       mailca webhook remove [--dir DIR] ID
       mailca webhook deliveries [--dir DIR] [--limit N]

Webhooks tell another system of the enrolment events of a policy
(enrolment.submitted, enrolment.approved, enrolment.issued,
enrolment.revoked) with signed POSTs; see docs/api.md. 'add' prints the
signing secret once. mailca serve delivers, with retries, from the events
after the endpoint was added.
`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, synopsis)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	fs := newFlags("webhook "+args[0], synopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	open := func() (*datadir.Instance, error) { return datadir.OpenWithoutKey(ctx, *dir) }
	switch args[0] {
	case "add":
		policy := fs.String("policy", "", "the `policy` whose events are sent")
		u := fs.String("url", "", "the receiver's `URL` (http or https; use https across networks)")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if *policy == "" || *u == "" {
			return usageError(fs, "give --policy and --url")
		}
		in, err := open()
		if err != nil {
			return err
		}
		defer in.Close()
		if _, err := in.Enrol.Policy(ctx, *policy); err != nil {
			return err
		}
		ep, err := webhook.Add(ctx, in.DB, "cli", *policy, *u, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, ep.Secret)
		fmt.Fprintf(stderr, "Webhook %d added for policy %s. The signing secret above is shown this once.\n", ep.ID, ep.Policy)
		return nil
	case "list":
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		in, err := open()
		if err != nil {
			return err
		}
		defer in.Close()
		eps, err := in.DB.Webhooks(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPOLICY\tURL\tCURSOR\tCREATED")
		for _, e := range eps {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", e.ID, e.Policy, e.URL, e.Cursor, e.CreatedAt.Format(time.DateOnly))
		}
		return tw.Flush()
	case "remove":
		if err := fs.Parse(args[1:]); err != nil {
			return flagError(err)
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if fs.NArg() != 1 || err != nil {
			return usageError(fs, "name one webhook by its ID")
		}
		in, err := open()
		if err != nil {
			return err
		}
		defer in.Close()
		if err := webhook.Remove(ctx, in.DB, "cli", id, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Webhook %d removed.\n", id)
		return nil
	case "deliveries":
		limit := fs.Int("limit", 50, "show the newest `N` deliveries")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		in, err := open()
		if err != nil {
			return err
		}
		defer in.Close()
		ds, err := in.DB.WebhookDeliveries(ctx, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWEBHOOK\tEVENT\tTYPE\tSTATE\tATTEMPTS\tLAST ERROR")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%d\t%s\n", d.ID, d.EndpointID, d.Seq, d.Event, d.State, d.Attempts, d.LastError)
		}
		return tw.Flush()
	}
	fmt.Fprintf(stderr, "mailca webhook: unknown subcommand %q\n\n%s", args[0], synopsis)
	return errUsage
}
