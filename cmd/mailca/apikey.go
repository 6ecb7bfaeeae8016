package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
)

func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	synopsis := `Usage: mailca apikey create [--dir DIR] --name NAME --scope SCOPES [--policy P]... [--expires 90d]
       mailca apikey list [--dir DIR]
       mailca apikey revoke [--dir DIR] NAME

Manages the keys with which other systems call the integration API
(/api/v1, see docs/api.md). 'create' prints the key once: only its SHA-256
is stored. 'revoke' takes effect at the key's next request.

Scopes (comma-separated): ` + scopeNames() + `;
or the shorthands invite, refer, approve, revoke, read.
`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, synopsis)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	fs := newFlags("apikey "+args[0], synopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	switch args[0] {
	case "create":
		name := fs.String("name", "", "the key's `name`, unique; the audit log shows apikey:NAME")
		scope := fs.String("scope", "", "comma-separated `scopes`")
		expires := fs.String("expires", "", "`lifetime`: days (90d) or a duration (36h); default never")
		var policies multiFlag
		fs.Var(&policies, "policy", "limit the key to this `policy` (repeatable); default every policy")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		scopes, err := apikey.ParseScopes(*scope)
		if err != nil {
			return usageError(fs, err.Error())
		}
		life, err := apikey.ParseLifetime(*expires)
		if err != nil {
			return usageError(fs, err.Error())
		}
		in, err := datadir.OpenWithoutKey(ctx, *dir)
		if err != nil {
			return err
		}
		defer in.Close()
		for _, p := range policies {
			if _, err := in.Enrol.Policy(ctx, p); err != nil {
				return err
			}
		}
		k, token, err := apikey.NewService(in.DB, nil).Create(ctx, "cli", apikey.CreateRequest{Name: *name, Scopes: scopes, Policies: policies, Lifetime: life})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "API key %s created with scopes %s%s%s.\nIt is shown this once; store it now.\n", k.Name, joinScopes(k.Scopes), policyNote(k), expiryNote(k))
		return nil
	case "list":
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		in, err := datadir.OpenWithoutKey(ctx, *dir)
		if err != nil {
			return err
		}
		defer in.Close()
		keys, err := apikey.NewService(in.DB, nil).List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tSTATE\tSCOPES\tPOLICIES\tEXPIRES\tCREATED")
		now := time.Now()
		for _, k := range keys {
			state := "active"
			switch {
			case !k.RevokedAt.IsZero():
				state = "revoked"
			case !k.Active(now):
				state = "expired"
			}
			pol, exp := strings.Join(k.Policies, ","), "never"
			if pol == "" {
				pol = "all"
			}
			if !k.ExpiresAt.IsZero() {
				exp = k.ExpiresAt.Format(time.DateOnly)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.ID, state, joinScopes(k.Scopes), pol, exp, k.CreatedAt.Format(time.DateOnly))
		}
		return tw.Flush()
	case "revoke":
		if err := fs.Parse(args[1:]); err != nil {
			return flagError(err)
		}
		if fs.NArg() != 1 {
			return usageError(fs, "name one key")
		}
		in, err := datadir.OpenWithoutKey(ctx, *dir)
		if err != nil {
			return err
		}
		defer in.Close()
		if err := apikey.NewService(in.DB, nil).Revoke(ctx, "cli", fs.Arg(0)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key %s revoked.\n", fs.Arg(0))
		return nil
	}
	fmt.Fprintf(stderr, "mailca apikey: unknown subcommand %q\n\n%s", args[0], synopsis)
	return errUsage
}

func scopeNames() string {
	s := make([]string, len(apikey.Scopes))
	for i, sc := range apikey.Scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ", ")
}

func joinScopes(sc []apikey.Scope) string {
	s := make([]string, len(sc))
	for i, x := range sc {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}

func policyNote(k *apikey.Key) string {
	if len(k.Policies) == 0 {
		return ""
	}
	return " for policies " + strings.Join(k.Policies, ", ")
}

func expiryNote(k *apikey.Key) string {
	if k.ExpiresAt.IsZero() {
		return ", never expiring"
	}
	return ", expiring " + k.ExpiresAt.Format(time.RFC3339)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
