package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
)

func runRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("revoke", `Usage: mailca revoke [--dir DIR] --serial SERIAL --reason REASON [--as NAME]

Revokes a certificate. SERIAL is hexadecimal, with or without colons, as
'mailca enrolments' and 'openssl x509 -serial' show it. REASON is one of
`+strings.Join(ca.RevocationReasons(), ", ")+`.
keyCompromise also blocks the key: no certificate will ever be issued for
it again.

The subscriber is told by email, the enrolment (if any) becomes revoked, and
the audit log records who revoked and why. A running 'mailca serve' answers
OCSP requests with the new status at once and publishes a new CRL within a
few seconds. Revoking a revoked certificate changes nothing.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	serial := fs.String("serial", "", "the certificate's `serial` number")
	reason := fs.String("reason", "", "why: an RFC 5280 reason `name`")
	as := fs.String("as", "cli", "`name` of whoever revokes, recorded in the audit log")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *serial == "" || *reason == "" {
		return usageError(fs, "--serial and --reason are required")
	}
	r, err := ca.ParseRevocationReason(*reason)
	if err != nil {
		return err
	}
	// Revoking needs no CA key: the CRL and OCSP responses are signed by
	// the server, which sees the revocation in the database.
	in, err := datadir.OpenWithoutKey(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	res, err := in.Enrol.Revoke(ctx, "cli:"+*as, *serial, r)
	if err != nil {
		return err
	}
	when := res.RevokedAt.UTC().Format(time.RFC3339)
	if res.AlreadyRevoked {
		fmt.Fprintf(stdout, "Certificate %s was already revoked on %s (%s); nothing changed.\n", res.Serial, when, res.Reason)
		return nil
	}
	fmt.Fprintf(stdout, "Revoked certificate %s", res.Serial)
	if res.Mailbox != "" {
		fmt.Fprintf(stdout, " of %s", res.Mailbox)
	}
	fmt.Fprintf(stdout, " on %s (%s).\n", when, res.Reason)
	if res.KeyBlocked {
		fmt.Fprintln(stdout, "Its key is blocked: no certificate will be issued for it again.")
	}
	if res.EnrolmentID != 0 {
		fmt.Fprintf(stdout, "Enrolment %d is now revoked.\n", res.EnrolmentID)
	}
	return nil
}

func runCRL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("crl", `Usage: mailca crl [--dir DIR] [--out FILE]

Makes a new CRL of the issuing CA now and stores it as the current one (a
running 'mailca serve' serves it within half a minute). It is written in
DER to FILE, or as PEM to standard output. Needs the CA key passphrase, as
'mailca serve' does.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	out := fs.String("out", "", "write the CRL in DER to this `file` (default: PEM on standard output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in, err := datadir.Open(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	p, err := ca.NewCRLPublisher(ca.CRLConfig{Issuer: in.Engine.Issuer(), Store: in.DB, Interval: in.Config.CA.CRLInterval})
	if err != nil {
		return err
	}
	c, err := p.Generate(ctx)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, c.DER, 0o644); err != nil {
			return err
		}
	} else if err := pem.Encode(stdout, &pem.Block{Type: "X509 CRL", Bytes: c.DER}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "CRL number %d of %s: %d revoked certificates, next update %s\n",
		c.Number, p.Issuer().Cert.Subject.CommonName, c.Entries, c.NextUpdate.UTC().Format(time.RFC3339))
	return nil
}
