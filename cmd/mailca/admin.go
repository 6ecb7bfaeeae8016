package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
)

const adminSynopsis = `Usage: mailca admin add    [--dir DIR] --email ADDR --role ROLE [--policy NAME... | --all-policies]
       mailca admin list   [--dir DIR]
       mailca admin remove [--dir DIR] --email ADDR
       mailca admin role   [--dir DIR] --email ADDR --role ROLE [--policy NAME... | --all-policies]
       mailca admin cancel [--dir DIR] --email ADDR
       mailca admin unlock [--dir DIR] --email ADDR

Manages the accounts of the RA Management Console (/console). Roles:
administrator (everything), officer (invite, approve, reject, revoke, under
the policies named with --policy, or every policy with --all-policies: an
officer needs one or the other), auditor (read, and the audit log).

'add' prints a one-time join link where the person chooses a password and
sets up an authenticator app (TOTP); it is valid for 24 hours. Send it over
a channel you trust: whoever opens it first gets the account. A new 'add'
for the same address replaces an unused link; 'cancel' deletes it.

'remove' deletes an account, ends its sessions and cancels the unused
invitations it made; 'role' takes effect on the account's next request
(demoting an administrator cancels its unused invitations too). The last
administrator can be neither removed nor demoted.

'unlock' lifts the lockout that failed logins put on an account.
`

func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags("admin", adminSynopsis, stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlags("admin "+sub, adminSynopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	email := fs.String("email", "", "the account's email `address` (add, remove, role)")
	role := fs.String("role", "", "`role`: administrator, officer or auditor (add, role)")
	var policies stringList
	fs.Var(&policies, "policy", "limit an officer to this `policy`; repeat for several (add, role)")
	allPolicies := fs.Bool("all-policies", false, "let an officer act under every policy, present and future (add, role)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var r auth.Role
	switch sub {
	case "add", "role":
		if *email == "" || *role == "" {
			return usageError(fs, "give --email and --role")
		}
		var err error
		if r, err = auth.ParseRole(*role); err != nil {
			return usageError(fs, err.Error())
		}
		if (len(policies) > 0 || *allPolicies) && r != auth.Officer {
			return usageError(fs, "--policy and --all-policies are for the officer role only")
		}
		switch {
		case r != auth.Officer:
		case len(policies) > 0 && *allPolicies:
			return usageError(fs, "give --policy or --all-policies, not both")
		case *allPolicies:
			policies = stringList{auth.AllPolicies}
		case len(policies) == 0:
			return usageError(fs, "an officer needs a scope: give --policy NAME (repeat for several) or --all-policies")
		}
		if slices.Contains(policies, auth.AllPolicies) && !*allPolicies {
			return usageError(fs, "--policy names a policy; for every policy give --all-policies")
		}
	case "remove", "cancel", "unlock":
		if *email == "" {
			return usageError(fs, "give --email")
		}
	case "list":
	default:
		return usageError(fs, fmt.Sprintf("unknown subcommand %q", sub))
	}

	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	svc, err := newAuth(in.Config, in.DB)
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		token, err := svc.InviteAccount(ctx, "cli", *email, r, policies)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Join link for %s (%s), valid %s:\n%s\n", strings.ToLower(strings.TrimSpace(*email)), r,
			lifetime(svc.LinkLifetime()), joinURL(in.Config.Server.PublicURL, token))
		return nil
	case "list":
		list, err := svc.Accounts(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tPOLICIES\tNAME\tLAST LOGIN")
		for _, a := range list {
			last := "never"
			if !a.LastLogin.IsZero() {
				last = a.LastLogin.UTC().Format("2006-01-02 15:04")
			}
			pol := strings.Join(a.Policies, ",")
			switch {
			case a.Role != auth.Officer:
				pol = "-"
			case pol == auth.AllPolicies:
				pol = "all"
			case pol == "":
				pol = "none"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Email, a.Role, pol, printableName(a.Name), last)
		}
		return tw.Flush()
	}
	if sub == "cancel" {
		if err := svc.CancelInvitationsOf(ctx, "cli", *email); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "The invitation of %s is cancelled; its link no longer works.\n", strings.ToLower(strings.TrimSpace(*email)))
		return nil
	}
	a, err := svc.AccountByEmail(ctx, *email)
	if err != nil {
		return err
	}
	if sub == "unlock" {
		if err := svc.Unlock(ctx, "cli", a.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s may log in again.\n", a.Email)
		return nil
	}
	if sub == "remove" {
		if err := svc.Remove(ctx, "cli", a.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Removed %s; its sessions have ended.\n", a.Email)
		return nil
	}
	if err := svc.SetRole(ctx, "cli", a.ID, r, policies); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s is now %s.\n", a.Email, r)
	return nil
}

// newAuth returns the account service of a data directory. Its TOTP
// issuer names the public host, so that an authenticator app tells two
// mailca installations apart.
func newAuth(cfg *config.Config, db auth.Store) (*auth.Service, error) {
	issuer := "mailca"
	if u, err := url.Parse(cfg.Server.PublicURL); err == nil && u.Hostname() != "" {
		issuer += " " + u.Hostname()
	}
	return auth.New(auth.Config{Store: db, Issuer: issuer})
}

// joinURL is the console page where a join or setup token is used.
func joinURL(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + "/console/join/" + token
}

// lifetime says d in words: "24 hours", "90 minutes".
func lifetime(d time.Duration) string {
	if d%time.Hour == 0 {
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return fmt.Sprintf("%d minutes", d/time.Minute)
}

// setupLinkFile is where serve leaves the setup link when its standard
// output is not a terminal, in the data directory.
const setupLinkFile = "setup-link.txt"

// printFirstRun shows the setup link when the database has no account yet.
// The link is a secret: it goes to the terminal of whoever started mailca,
// and when standard output is not a terminal (systemd, docker, a pipe:
// output that ends up in a log) it goes instead to a 0600 file in the data
// directory, whose path is printed. Once an account exists, the file is
// removed.
func printFirstRun(ctx context.Context, stdout io.Writer, cfg *config.Config, svc *auth.Service) error {
	return writeFirstRun(ctx, stdout, isTerminal(stdout), cfg, svc)
}

func writeFirstRun(ctx context.Context, stdout io.Writer, terminal bool, cfg *config.Config, svc *auth.Service) error {
	empty, err := svc.NeedsSetup(ctx)
	if err != nil {
		return err
	}
	if !empty {
		return removeSetupLink(cfg)
	}
	token, err := svc.SetupLink(ctx)
	if err != nil {
		return err
	}
	link, valid := joinURL(cfg.Server.PublicURL, token), lifetime(svc.LinkLifetime())
	if terminal {
		fmt.Fprintf(stdout, "first run: create the first administrator at %s (valid %s)\n", link, valid)
		return nil
	}
	path := filepath.Join(cfg.Dir, setupLinkFile)
	if err := removeSetupLink(cfg); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s\n", link); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "first run: the link to create the first administrator (valid %s) is in %s\n", valid, path)
	return nil
}

// removeSetupLink removes the setup link's file, if there is one.
func removeSetupLink(cfg *config.Config) error {
	err := os.Remove(filepath.Join(cfg.Dir, setupLinkFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}
