// Command mailca is a certificate authority and registration authority for
// S/MIME certificates.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"init":       {"create a data directory with a CA, configuration and database", runInit},
	"issue":      {"issue one S/MIME certificate from a CSR or as a PKCS#12 file", runIssue},
	"ca":         {"the CA: ca chain prints the issuing chain, ca root-crl signs the root CRL", runCA},
	"version":    {"print the version", runVersion},
	"serve":      {"run the web server and the email worker", runServe},
	"invite":     {"invite people from a CSV file, or one by --email", runInvite},
	"enrolments": {"list enrolments", runEnrolments},
	"approve":    {"approve a submitted application", runApprove},
	"reject":     {"reject a submitted application, with a reason", runReject},
	"resend":     {"send a fresh invitation or activation link", runResend},
	"cancel":     {"withdraw an enrolment not yet issued", runCancel},
	"revoke":     {"revoke a certificate, with an RFC 5280 reason", runRevoke},
	"crl":        {"make a new CRL now and write it", runCRL},
	"outbox":     {"list queued, sent and failed email", runOutbox},
	"policy":     {"list, export and import enrolment policies", runPolicy},
	"audit":      {"verify the audit log's hash chain, or export it as CSV", runAudit},
	"backup":     {"write a consistent copy of the database while mailca runs", runBackup},
	"migrate":    {"apply database migrations and show the schema version", runMigrate},
	"apikey":     {"keys for the integration API: create (printed once), list, revoke", runAPIKey},
	"webhook":    {"signed event POSTs to other systems: add, list, remove, deliveries", runWebhook},
	"admin":      {"console accounts: admin add prints a join link; list, remove, role", runAdmin},
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

// errUsage marks an error in the command line; mailca exits with status 2.
var errUsage = errors.New("usage error")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				c.run(ctx, []string{"--help"}, stdout, stderr)
				return 0
			}
		}
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mailca: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "mailca %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprint(w, `mailca issues S/MIME certificates to an organisation's users.

Usage:
  mailca COMMAND [OPTIONS]

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Run 'mailca COMMAND --help' for the options of a command.

Environment:
  MAILCA_KEY_PASSPHRASE  passphrase of the CA keys (else the configured
                         passphrase file is read)
  MAILCA_SMTP_PASSWORD   SMTP password (else [mail] smtp_password_file)
  MAILCA_PKCS11_PIN      PIN of the token holding the CA keys, when they are
                         in an HSM (else [pkcs11] pin_file)

Start here:
  mailca init            create ./mailca-data with a development CA
  mailca serve           the console at :8080/console/ (the first run prints
                         a setup link), mail kept at /dev/mailbox
  mailca invite FILE.csv invite a batch; then approve, and users activate
`)
}

// newFlags returns a flag set for a subcommand whose help text is synopsis
// followed by the flags.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mailca "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nOptions:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// flagError turns an error from fs.Parse into errUsage, keeping ErrHelp.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}

// parseFlags parses args, turning a flag error into errUsage (the flag
// package has already printed the message and usage).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "Usage: mailca version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "mailca", version)
	return nil
}
