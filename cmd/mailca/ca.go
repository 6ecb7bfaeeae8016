package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/keys"
)

func runCA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = `Usage: mailca ca chain [--dir DIR]
       mailca ca root-crl [--dir DIR] [--root-key FILE]

chain prints the issuing CA certificate followed by its chain (up to the
root when known), as PEM: what relying parties and mail clients need
besides a subscriber's own certificate.

root-crl signs a new CRL of the root CA made by 'mailca init' and stores it
as DIR/ca/root-ca.crl, which mailca serves at the issuing CA's CRL
distribution point. The root's CRL is valid for a year: sign a new one each
year, bringing the root key (kept offline) with --root-key. The key is
decrypted with the CA key passphrase.
`
	if len(args) > 0 && args[0] == "root-crl" {
		return runRootCRL(ctx, synopsis, args[1:], stdout, stderr)
	}
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

func runRootCRL(ctx context.Context, synopsis string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ca root-crl", synopsis, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	rootKey := fs.String("root-key", "", "the root CA's encrypted key `file`, or its pkcs11: URI (default: ca.root_key, else DIR/ca/root-ca.key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		return err
	}
	if *rootKey != "" && !keys.IsPKCS11URI(*rootKey) {
		*rootKey = absPath(*rootKey) // relative to the working directory, not DIR
	}
	if *rootKey == "" {
		*rootKey = cfg.CA.RootKey
	}
	if *rootKey == "" {
		*rootKey = datadir.RootKeyPath(cfg.Dir)
	}
	b, err := os.ReadFile(datadir.RootCertPath(cfg.Dir))
	if err != nil {
		return fmt.Errorf("the root certificate: %w (only a hierarchy made by mailca init has one here)", err)
	}
	roots, err := datadir.ParseCertificates(b)
	if err != nil {
		return err
	}
	key, closeKey, err := datadir.OpenKey(cfg, *rootKey)
	if err != nil {
		return err
	}
	defer closeKey()
	if !keys.SamePublicKey(key.Public(), roots[0].PublicKey) {
		return fmt.Errorf("%s is not the key of the root %q", *rootKey, roots[0].Subject.CommonName)
	}
	// CRL numbers only grow: continue from the CRL in place.
	number := int64(1)
	path := datadir.RootCRLPath(cfg.Dir)
	if old, err := os.ReadFile(path); err == nil {
		if crl, err := x509.ParseRevocationList(old); err == nil && crl.Number != nil {
			number = crl.Number.Int64() + 1
		}
	}
	der, err := ca.NewRootCRL(roots[0], key, nil, number, time.Now())
	if err != nil {
		return err
	}
	// Replace the file in one step, so the server never reads half a CRL.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, der, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote CRL number %d of %q to %s, valid for a year; restart mailca serve to publish it.\n", number, roots[0].Subject.CommonName, path)
	return nil
}
