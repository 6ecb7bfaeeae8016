package main

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/p12"
)

func runIssue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("issue", `Usage: mailca issue [--dir DIR] --email ADDR [--given-name G --surname S]
                    [--profile NAME] (--csr FILE | --p12 OUT [--p12-format legacy|modern]
                    [--password-file FILE])

Issues one S/MIME certificate for a mailbox whose control you have already
confirmed, and prints it as PEM on standard output. Only the public key is
taken from a CSR; its names are ignored.

With --p12, mailca generates the key and writes key, certificate and chain
to a PKCS#12 file protected by a random password, which goes to
--password-file or, without one, to standard error. Keep it: it is shown once.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	email := fs.String("email", "", "the subscriber's `mailbox`")
	given := fs.String("given-name", "", "given `name` (sponsor-validated profiles only)")
	surname := fs.String("surname", "", "`surname` (sponsor-validated profiles only)")
	profile := fs.String("profile", "", fmt.Sprintf("certificate `profile`, one of %v (default: the configured one)", ca.ProfileNames()))
	days := fs.Int("validity-days", 0, "validity in `days`, at most 825 (default: the configured one)")
	csrFile := fs.String("csr", "", "PKCS#10 request `file` (PEM or DER; - for standard input)")
	p12Out := fs.String("p12", "", "write a new key and the certificate to this PKCS#12 `file`")
	p12Format := fs.String("p12-format", "legacy", "PKCS#12 `format`: legacy (3DES, SHA-1 MAC; imports everywhere) or modern (AES-256)")
	keyType := fs.String("key-type", string(keys.RSA2048), "`type` of a generated key; RSA imports in every mail client")
	passOut := fs.String("password-file", "", "write the PKCS#12 password to this new `file` (mode 0600)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return usageError(fs, "--email is required")
	}
	if (*csrFile == "") == (*p12Out == "") {
		return usageError(fs, "give exactly one of --csr and --p12")
	}
	if *passOut != "" && *p12Out == "" {
		return usageError(fs, "--password-file goes with --p12")
	}
	addr, err := mailbox.Parse(*email)
	if err != nil {
		return err
	}
	format, err := p12.ParseFormat(*p12Format)
	if err != nil {
		return err
	}

	// Read the CSR, or create the output files, before anything is issued:
	// a certificate whose key has nowhere to go is a certificate wasted.
	var (
		csrKey          any
		p12File, pwFile *os.File
	)
	if *csrFile != "" {
		b, err := readInput(*csrFile)
		if err != nil {
			return err
		}
		csr, err := ca.ParseCSR(b)
		if err != nil {
			return err
		}
		csrKey = csr.PublicKey
	} else {
		if p12File, err = createNew(*p12Out); err != nil {
			return err
		}
		defer cleanupOnError(p12File, &err)
		if *passOut != "" {
			if pwFile, err = createNew(*passOut); err != nil {
				return err
			}
			defer cleanupOnError(pwFile, &err)
		}
	}

	in, err := datadir.Open(ctx, *dir)
	if err != nil {
		return err
	}
	defer in.Close()
	req := ca.Request{
		Profile:   *profile,
		Mailbox:   addr,
		GivenName: *given,
		Surname:   *surname,
		Validity:  in.DefaultValidity(),
	}
	if req.Profile == "" {
		req.Profile = in.Config.CA.DefaultProfile
	}
	if *days != 0 {
		req.Validity = time.Duration(*days) * 24 * time.Hour
	}

	if csrKey != nil {
		req.PublicKey = csrKey
		cert, err := in.Engine.Issue(ctx, req)
		if err != nil {
			return err
		}
		if err := auditIssue(ctx, in, cert, req, "csr"); err != nil {
			return err
		}
		return pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Cert.Raw})
	}

	kt, err := keys.ParseType(*keyType)
	if err != nil {
		return err
	}
	key, err := keys.Generate(rand.Reader, kt)
	if err != nil {
		return err
	}
	req.PublicKey = key.Public()
	cert, err := in.Engine.Issue(ctx, req)
	if err != nil {
		return err
	}
	if err := auditIssue(ctx, in, cert, req, "server"); err != nil {
		return err
	}
	password, err := p12.NewPassword()
	if err != nil {
		return err
	}
	friendly := addr.String()
	if o := in.Config.CA.Organization; o != "" {
		friendly += " (" + o + ")"
	}
	data, err := p12.Encode(rand.Reader, key, cert.Cert, cert.Chain, friendly, password, format)
	if err != nil {
		return err
	}
	if err = writeClose(p12File, data); err != nil {
		return err
	}
	if pwFile != nil {
		if err = writeClose(pwFile, []byte(password+"\n")); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stderr, "PKCS#12 password (shown once): %s\n", password)
	}
	return pem.Encode(stdout, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Cert.Raw})
}

// usageError reports a command-line mistake briefly and returns errUsage.
func usageError(fs *flag.FlagSet, msg string) error {
	fmt.Fprintf(fs.Output(), "%s: %s\nRun '%s --help' for the options.\n", fs.Name(), msg, fs.Name())
	return errUsage
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	}
	return os.ReadFile(name)
}

// createNew creates a file that must not exist yet, readable by its owner
// only: it will hold a private key or a password.
func createNew(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s exists; mailca does not overwrite key material", name)
	}
	return f, err
}

func writeClose(f *os.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// cleanupOnError removes f when the command fails, so a failed run leaves
// no empty or partial key file behind.
func cleanupOnError(f *os.File, err *error) {
	if *err != nil {
		f.Close()
		os.Remove(f.Name())
	}
}

// auditIssue records a certificate issued from the command line in the
// audit log. The operator who runs 'mailca issue' vouches for the mailbox;
// the log says so, since no link validated it.
func auditIssue(ctx context.Context, in *datadir.Instance, cert *ca.Certificate, req ca.Request, keySource string) error {
	serial := ca.SerialHex(cert.Cert.SerialNumber)
	err := in.DB.InTx(ctx, func(tx enrol.Tx) error {
		return tx.Audit(enrol.Event{Actor: "cli", Action: "certificate.issue", Object: "certificate:" + serial,
			Detail: fmt.Sprintf("%s, profile %s, %s key, mailbox vouched for by the operator", req.Mailbox, req.Profile, keySource)})
	})
	if err != nil {
		return fmt.Errorf("certificate %s issued, but the audit event was not recorded: %w", serial, err)
	}
	return nil
}
