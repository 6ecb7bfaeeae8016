package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
)

func runCA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = `Usage: mailca ca chain [--dir DIR]

Prints the issuing CA certificate followed by its chain (up to the root when
known), as PEM: what relying parties and mail clients need besides a
subscriber's own certificate.
`
	if len(args) == 0 || args[0] != "chain" {
		fs := newFlags("ca", synopsis, stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return errUsage
	}
	fs := newFlags("ca chain", synopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		return err
	}
	// The chain is public: print it without decrypting the CA key.
	b, err := os.ReadFile(cfg.Path(cfg.CA.Certificate))
	if err != nil {
		return err
	}
	chain, err := datadir.ParseCertificates(b)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Path(cfg.CA.Certificate), err)
	}
	for _, c := range chain {
		if err := pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return err
		}
	}
	return nil
}
