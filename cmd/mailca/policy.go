package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/enrol"
)

const policySynopsis = `Usage: mailca policy list   [--dir DIR]
       mailca policy export [--dir DIR] [--name NAME] [--format yaml|json] [--version N]
       mailca policy import [--dir DIR] FILE

Enrolment policies hold every setting of the process: channels, link
lifetimes, form fields, allowed domains, approval, key modes, profile,
PKCS#12 format, terms, templates, referral keys. Export writes a policy as
YAML or JSON; import validates a file and stores it as the next version of
the policy it names (JSON or YAML, recognised by content). Enrolments keep
the version they started under.

An exported policy contains its referral keys' secrets: keep the file safe.
`

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags("policy", policySynopsis, stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlags("policy "+sub, policySynopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	name := fs.String("name", "default", "policy `name` (export)")
	format := fs.String("format", "yaml", "export `format`: yaml or json")
	version := fs.Int("version", 0, "export this `version` (default: the current one)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	switch sub {
	case "list":
		names, err := in.Enrol.PolicyNames(ctx)
		if err != nil {
			return err
		}
		for _, n := range names {
			p, err := in.Enrol.Policy(ctx, n)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\tv%d\t%s approval\t%s\n", p.Name, p.Version, p.Approval.Mode, p.Description)
		}
		return nil
	case "export":
		var p *enrol.Policy
		if *version > 0 {
			p, err = in.Enrol.PolicyAt(ctx, *name, *version)
		} else {
			p, err = in.Enrol.Policy(ctx, *name)
		}
		if err != nil {
			return err
		}
		p.Version = 0 // a file describes settings; the store numbers versions
		switch *format {
		case "json":
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(p)
		case "yaml":
			enc := yaml.NewEncoder(stdout)
			enc.SetIndent(2)
			if err := enc.Encode(p); err != nil {
				return err
			}
			return enc.Close()
		}
		return usageError(fs, fmt.Sprintf("unknown format %q", *format))
	case "import":
		if fs.NArg() != 1 {
			return usageError(fs, "give one policy file")
		}
		b, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		p, err := decodePolicyFile(b)
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(0), err)
		}
		v, err := in.Enrol.SavePolicy(ctx, "cli", p)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Saved policy %s as version %d.\n", p.Name, v)
		return nil
	}
	return usageError(fs, fmt.Sprintf("unknown policy command %q", sub))
}

// decodePolicyFile reads a policy as JSON or YAML, refusing unknown
// settings: a misspelt setting silently ignored is a policy not applied.
func decodePolicyFile(b []byte) (*enrol.Policy, error) {
	var p enrol.Policy
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("not a valid policy in JSON: %w", err)
		}
		return &p, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("not a valid policy in YAML: %w", err)
	}
	return &p, nil
}
