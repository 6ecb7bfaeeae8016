// Package datadir creates and opens mailca data directories.
package datadir

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// File names inside the data directory.
const (
	caDir          = "ca"
	rootCertFile   = "ca/root-ca.pem"
	rootCRLFile    = "ca/root-ca.crl"
	rootKeyFile    = "ca/root-ca.key"
	issuerCertFile = "ca/issuing-ca.pem"
	issuerKeyFile  = "ca/issuing-ca.key"
	passphraseFile = "ca/passphrase"
	dbFile         = "mailca.db"
)

// InitOptions says how to create a data directory.
type InitOptions struct {
	Dir          string
	Organization string // subject O of the CAs and of organisation-validated certificates
	Country      string // optional ISO 3166 alpha-2
	PublicURL    string // origin of links in emails; default http://localhost:8080
	PKIURL       string // http origin of CRLs, OCSP, CA certificates; default PublicURL when it is http
	RootKey      keys.Type
	IssuingKey   keys.Type

	// ImportChain and ImportKey name an existing issuing CA to use instead
	// of creating a root and an issuing CA: a PEM chain (issuing CA first)
	// and its private key (PEM; encrypted PKCS#8 under the passphrase, or
	// unencrypted, in which case it is stored encrypted).
	ImportChain, ImportKey string

	// PassphraseFile names a file holding the CA key passphrase. When it and
	// MAILCA_KEY_PASSPHRASE are both unset, a random passphrase is written
	// to DIR/ca/passphrase (mode 0600): the development default.
	PassphraseFile string

	// PKCS11 is the pkcs11: URI of a token in which Init generates the
	// root and issuing CA keys (labels "root-ca" and "issuing-ca") instead
	// of writing key files; see TokenOptions.
	PKCS11 TokenOptions
}

// InitResult reports what Init made.
type InitResult struct {
	Config   *config.Config
	Root     *x509.Certificate // nil when an issuing CA was imported without its root
	Issuer   *x509.Certificate
	Warnings []string // things the administrator should know
}

// ErrInitialised is returned by Init when the directory already holds a
// configuration; nothing is changed.
var ErrInitialised = errors.New("datadir: already initialised")

// Init creates a data directory: configuration, database, CA keys and
// certificates. It never overwrites a file. The configuration is written
// last, so its presence means a completed Init.
func Init(ctx context.Context, o InitOptions) (*InitResult, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, config.FileName)); err == nil {
		return nil, ErrInitialised
	}
	if err := checkNoLeftovers(dir); err != nil {
		return nil, err
	}
	if o.Organization == "" {
		return nil, errors.New("datadir: an organisation name is required")
	}
	if o.PublicURL == "" {
		o.PublicURL = "http://localhost:8080"
	}
	if o.PKIURL == "" {
		o.PKIURL = o.PublicURL
	}
	res := &InitResult{}
	cfg := &config.Config{Dir: dir}
	cfg.Server.Listen = ":8080"
	cfg.Server.PublicURL = o.PublicURL
	cfg.Database.URL = "sqlite:" + dbFile
	cfg.CA = config.CA{
		PKIURL:         o.PKIURL,
		Certificate:    issuerCertFile,
		Key:            issuerKeyFile,
		Organization:   o.Organization,
		Country:        o.Country,
		DefaultProfile: ca.DefaultProfile,
		ValidityDays:   365,
	}
	if ca.NeedsInternalNameWaiver(o.PKIURL) {
		cfg.CA.WaivedLintWarnings = []string{"w_smime_aia_contains_internal_names"}
		res.Warnings = append(res.Warnings, fmt.Sprintf("the PKI URL %s is not a public name: fine for trying mailca, but certificates will point relying parties at it; use --pki-url http://pki.example.com for production", o.PKIURL))
	}

	if err := os.MkdirAll(filepath.Join(dir, caDir), 0o700); err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	var issuerKey crypto.Signer
	if o.PKCS11.used() {
		// The keys are made (or found) in the token; no key file, no passphrase.
		tk, err := newTokenKeys(o, cfg, res)
		if err != nil {
			return nil, err
		}
		defer tk.hsm.Close()
		if issuerKey, err = createHierarchy(dir, o, tk, res); err != nil {
			return nil, err
		}
	} else {
		pass, passFile, err := initPassphrase(dir, o.PassphraseFile)
		if err != nil {
			return nil, err
		}
		cfg.CA.PassphraseFile = passFile
		if o.ImportChain != "" {
			issuerKey, err = importIssuer(dir, o, pass, res)
		} else {
			issuerKey, err = createHierarchy(dir, o, fileKeys{dir, pass}, res)
		}
		if err != nil {
			return nil, err
		}
	}

	// The CA's own keys may never appear in a subscriber certificate.
	db, err := sqlite.Open(ctx, filepath.Join(dir, dbFile))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	blocked := []crypto.PublicKey{issuerKey.Public()}
	if res.Root != nil {
		blocked = append(blocked, res.Root.PublicKey)
	}
	for _, pub := range blocked {
		h, err := keys.SPKIHash(pub)
		if err != nil {
			return nil, err
		}
		if err := db.BlockKey(ctx, h, "CA key"); err != nil {
			return nil, err
		}
	}
	svc := enrol.NewService(enrol.Config{Store: db, PublicURL: o.PublicURL})
	if err := svc.EnsureDefaultPolicy(ctx, "init"); err != nil {
		return nil, fmt.Errorf("datadir: creating the default policy: %w", err)
	}

	body, err := config.Render(cfg)
	if err != nil {
		return nil, fmt.Errorf("datadir: rendering configuration: %w", err)
	}
	if err := keys.WriteNewFile(filepath.Join(dir, config.FileName), body, 0o600); err != nil {
		return nil, err
	}
	// Read it back: what Init wrote must be what Open will accept.
	if res.Config, err = config.Load(dir); err != nil {
		return nil, fmt.Errorf("datadir: the configuration just written does not load: %w", err)
	}
	return res, nil
}

// checkNoLeftovers refuses a directory holding CA files but no
// configuration: the trace of an Init that stopped half-way, which must not
// be completed with new keys beside old ones.
func checkNoLeftovers(dir string) error {
	for _, f := range []string{rootKeyFile, issuerKeyFile, issuerCertFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("datadir: %s exists but %s does not: a previous init stopped part-way; move %s away and run init again", filepath.Join(dir, f), config.FileName, dir)
		}
	}
	return nil
}

// initPassphrase returns the passphrase that protects the CA keys and the
// file to record in the configuration ("" when it comes from the
// environment).
func initPassphrase(dir, file string) ([]byte, string, error) {
	if _, ok := os.LookupEnv(keys.PassphraseEnv); ok {
		p, err := keys.Passphrase("")
		return p, "", err
	}
	if file != "" {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, "", err
		}
		p, err := keys.Passphrase(abs)
		return p, abs, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	p := base64.RawURLEncoding.EncodeToString(raw)
	if err := keys.WriteNewFile(filepath.Join(dir, passphraseFile), []byte(p+"\n"), 0o600); err != nil {
		return nil, "", err
	}
	return []byte(p), passphraseFile, nil
}

// caKeys makes the keys of a new CA hierarchy and keeps them: as
// encrypted files (fileKeys) or in a PKCS#11 token (tokenKeys).
type caKeys interface {
	// make returns the root (root true) or issuing CA key, of type t.
	make(root bool, t keys.Type) (crypto.Signer, error)
	// keep stores the keys before any certificate is written, and says
	// where the root key is for the administrator.
	keep(root, issuing crypto.Signer) (warning string, err error)
}

type fileKeys struct {
	dir  string
	pass []byte
}

func (fileKeys) make(_ bool, t keys.Type) (crypto.Signer, error) {
	return keys.Generate(rand.Reader, t)
}

func (f fileKeys) keep(root, issuing crypto.Signer) (string, error) {
	if err := keys.WriteEncryptedFile(filepath.Join(f.dir, rootKeyFile), root, f.pass); err != nil {
		return "", err
	}
	if err := keys.WriteEncryptedFile(filepath.Join(f.dir, issuerKeyFile), issuing, f.pass); err != nil {
		return "", err
	}
	return fmt.Sprintf("the root CA key is in %s; for production, move it offline (and sign the root's CRL yearly with 'mailca ca root-crl')", filepath.Join(f.dir, rootKeyFile)), nil
}

func createHierarchy(dir string, o InitOptions, ks caKeys, res *InitResult) (crypto.Signer, error) {
	if o.RootKey == "" {
		o.RootKey = keys.ECDSAP384
	}
	if o.IssuingKey == "" {
		o.IssuingKey = keys.ECDSAP256
	}
	linter, err := ca.NewLinter()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rootKey, err := ks.make(true, o.RootKey)
	if err != nil {
		return nil, err
	}
	root, err := ca.NewRoot(rootKey, ca.CAName{Organization: o.Organization, Country: o.Country, CommonName: trimCN(o.Organization + " Root CA")}, now)
	if err != nil {
		return nil, err
	}
	issKey, err := ks.make(false, o.IssuingKey)
	if err != nil {
		return nil, err
	}
	iss, err := ca.NewIssuingCA(root, rootKey, issKey.Public(), ca.CAName{Organization: o.Organization, Country: o.Country, CommonName: trimCN(o.Organization + " S/MIME CA")}, o.PKIURL, now)
	if err != nil {
		return nil, err
	}
	for _, c := range []*x509.Certificate{root, iss} {
		if err := linter.Check(c.Raw); err != nil {
			return nil, fmt.Errorf("datadir: CA certificate %q: %w", c.Subject.CommonName, err)
		}
	}
	// Keys first, then certificates: a certificate on disk always has its key.
	warning, err := ks.keep(rootKey, issKey)
	if err != nil {
		return nil, err
	}
	if err := keys.WriteNewFile(filepath.Join(dir, rootCertFile), certPEM(root), 0o644); err != nil {
		return nil, err
	}
	if err := keys.WriteNewFile(filepath.Join(dir, issuerCertFile), certPEM(iss, root), 0o644); err != nil {
		return nil, err
	}
	// The issuing CA's CRL distribution point names the root's CRL: sign
	// the first one now, while the root key is at hand.
	crl, err := ca.NewRootCRL(root, rootKey, nil, 1, now)
	if err != nil {
		return nil, err
	}
	if err := keys.WriteNewFile(filepath.Join(dir, rootCRLFile), crl, 0o644); err != nil {
		return nil, err
	}
	res.Root, res.Issuer = root, iss
	res.Warnings = append(res.Warnings, warning)
	return issKey, nil
}

func importIssuer(dir string, o InitOptions, pass []byte, res *InitResult) (crypto.Signer, error) {
	if o.ImportKey == "" {
		return nil, errors.New("datadir: importing an issuing CA needs both its chain and its key")
	}
	b, err := os.ReadFile(o.ImportChain)
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	chain, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("datadir: %s: %w", o.ImportChain, err)
	}
	key, err := keys.LoadFile(o.ImportKey, pass)
	if err != nil {
		return nil, err
	}
	iss, err := ca.NewIssuer(chain[0], chain[1:], key, o.PKIURL)
	if err != nil {
		return nil, fmt.Errorf("datadir: imported CA: %w", err)
	}
	if err := verifyChain(chain); err != nil {
		return nil, err
	}
	if err := keys.WriteEncryptedFile(filepath.Join(dir, issuerKeyFile), key, pass); err != nil {
		return nil, err
	}
	if err := keys.WriteNewFile(filepath.Join(dir, issuerCertFile), certPEM(chain...), 0o644); err != nil {
		return nil, err
	}
	res.Issuer, res.Root = iss.Cert, iss.Root()
	if time.Until(iss.Cert.NotAfter) < ca.MaxValidity {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the issuing CA expires on %s; certificates cannot outlive it", iss.Cert.NotAfter.Format(time.DateOnly)))
	}
	return key, nil
}

// verifyChain checks that each certificate is signed by the next one.
func verifyChain(chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Errorf("datadir: chain certificate %d (%s) is not signed by the next one (%s): %w", i+1, chain[i].Subject.CommonName, chain[i+1].Subject.CommonName, err)
		}
	}
	return nil
}

// ParseCertificates parses every CERTIFICATE block of a PEM file, in order.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return out, nil
}

func certPEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// trimCN keeps a generated CA common name within RFC 5280's 64 characters.
func trimCN(s string) string {
	r := []rune(s)
	if len(r) > 64 {
		return string(r[:64])
	}
	return s
}

// RootCRLPath is where init writes the root's CRL, which mailca serves at
// the issuing CA's CRL distribution point.
func RootCRLPath(dir string) string { return filepath.Join(dir, rootCRLFile) }

// RootKeyPath is where init writes the root key of a CA hierarchy it made.
func RootKeyPath(dir string) string { return filepath.Join(dir, rootKeyFile) }

// RootCertPath is where init writes the root certificate.
func RootCertPath(dir string) string { return filepath.Join(dir, rootCertFile) }
