package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/keys"
)

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", `Usage: mailca init [--dir DIR] [OPTIONS]

Creates the data directory: a commented configuration file, the SQLite
database, and a CA hierarchy (a root CA and an S/MIME issuing CA), or an
existing issuing CA given with --import-chain and --import-key.

CA keys are stored encrypted under the passphrase in MAILCA_KEY_PASSPHRASE,
or in --passphrase-file; with neither, a random passphrase is generated into
DIR/ca/passphrase (mode 0600), which suits a development CA only.

With --pkcs11 URI the root and issuing CA keys are generated inside a
PKCS#11 token (an HSM), labelled root-ca and issuing-ca, non-extractable;
no key file and no passphrase are written, and mailca.toml names the keys
by their PKCS#11 URIs. --issuing-key-uri and --root-key-uri use keys
already in a token instead. The user PIN comes from MAILCA_PKCS11_PIN,
--pkcs11-pin-file, or pin-source=file:PATH in the URI; a pin-value in a
URI given here is used for init only and never written. For example:

  MAILCA_PKCS11_PIN=... mailca init --pkcs11 'pkcs11:token=mailca' \
      --pkcs11-module /usr/lib/softhsm/libsofthsm2.so

Running init on a directory that is already initialised changes nothing.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	org := fs.String("org", "mailca Development", "organisation `name` in the CA certificates and in organization- and sponsor-validated certificates")
	country := fs.String("country", "", "ISO 3166 two-letter country `code` of the organisation (optional)")
	publicURL := fs.String("public-url", "http://localhost:8080", "origin of the links mailca puts in emails")
	pkiURL := fs.String("pki-url", "", "http:// origin that serves CRLs, OCSP and CA certificates, named in every certificate (default: --public-url)")
	rootKey := fs.String("root-key", string(keys.ECDSAP384), fmt.Sprintf("root CA key `type`, one of %v", keys.Types))
	issuingKey := fs.String("issuing-key", string(keys.ECDSAP256), fmt.Sprintf("issuing CA key `type`, one of %v", keys.Types))
	importChain := fs.String("import-chain", "", "use an existing issuing CA: PEM `file` with its certificate first, then its chain")
	importKey := fs.String("import-key", "", "PEM `file` with the imported issuing CA's private key")
	passFile := fs.String("passphrase-file", "", "`file` whose first line is the CA key passphrase")
	p11Token := fs.String("pkcs11", "", "generate the CA keys in the PKCS#11 token this `URI` names (pkcs11:token=LABEL)")
	p11Module := fs.String("pkcs11-module", "", "PKCS#11 module `path` for URIs without module-path, such as /usr/lib/softhsm/libsofthsm2.so")
	p11PINFile := fs.String("pkcs11-pin-file", "", "`file` whose first line is the token's user PIN, used when MAILCA_PKCS11_PIN is unset")
	p11Issuing := fs.String("issuing-key-uri", "", "use the issuing CA key already in a token at this pkcs11: `URI`")
	p11Root := fs.String("root-key-uri", "", "use the root CA key already in a token at this pkcs11: `URI`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rk, err := keys.ParseType(*rootKey)
	if err != nil {
		return err
	}
	ik, err := keys.ParseType(*issuingKey)
	if err != nil {
		return err
	}
	if (*importChain == "") != (*importKey == "") {
		return errors.New("--import-chain and --import-key go together")
	}
	res, err := datadir.Init(ctx, datadir.InitOptions{
		Dir: *dir, Organization: *org, Country: *country, PublicURL: *publicURL, PKIURL: *pkiURL,
		RootKey: rk, IssuingKey: ik, ImportChain: *importChain, ImportKey: *importKey, PassphraseFile: *passFile,
		PKCS11: datadir.TokenOptions{Token: *p11Token, Module: *p11Module, PINFile: absPath(*p11PINFile), IssuingKey: *p11Issuing, RootKey: *p11Root},
	})
	if errors.Is(err, datadir.ErrInitialised) {
		fmt.Fprintf(stdout, "%s is already initialised; nothing changed.\n", *dir)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Initialised %s\n", res.Config.Dir)
	if res.Root != nil {
		fmt.Fprintf(stdout, "  root CA:    %s\n              SHA-256 %s\n", res.Root.Subject.CommonName, ca.Fingerprint(res.Root))
	}
	fmt.Fprintf(stdout, "  issuing CA: %s\n              SHA-256 %s\n", res.Issuer.Subject.CommonName, ca.Fingerprint(res.Issuer))
	for _, w := range res.Warnings {
		fmt.Fprintf(stdout, "Note: %s.\n", w)
	}
	return nil
}

// absPath makes a file named on the command line absolute, so that the
// configuration still finds it from another working directory.
func absPath(p string) string {
	if p == "" {
		return ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
