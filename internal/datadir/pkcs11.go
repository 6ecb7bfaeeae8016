package datadir

import (
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/keys"
)

// Labels of the CA keys that Init generates in a PKCS#11 token.
const (
	RootKeyLabel    = "root-ca"
	IssuingKeyLabel = "issuing-ca"
)

// TokenOptions says how Init puts the CA keys in a PKCS#11 token. The PIN
// comes from a pin-value in a URI given here, MAILCA_PKCS11_PIN, a
// pin-source, or PINFile. Only the URIs without their PIN, Module and
// PINFile are written to the configuration.
type TokenOptions struct {
	// Token is the pkcs11: URI of the token in which the root and issuing
	// CA keys are generated, labelled RootKeyLabel and IssuingKeyLabel.
	Token string
	// IssuingKey and RootKey are pkcs11: URIs of keys already in a token,
	// used instead of generating them.
	IssuingKey, RootKey string
	// Module is the PKCS#11 library for URIs without module-path; it is
	// written to [pkcs11] module.
	Module string
	// PINFile is written to [pkcs11] pin_file.
	PINFile string
}

func (t TokenOptions) used() bool { return t.Token != "" || t.IssuingKey != "" || t.RootKey != "" }

// tokenKeys makes or finds the CA keys in a token and records their URIs
// in the configuration.
type tokenKeys struct {
	hsm                 *keys.HSM
	base                *keys.PKCS11URI // the token, for keys Init generates
	issuingURI, rootURI *keys.PKCS11URI // keys already there; nil to generate
	cfg                 *config.Config
	pinInURI            bool
}

func newTokenKeys(o InitOptions, cfg *config.Config, res *InitResult) (*tokenKeys, error) {
	t := o.PKCS11
	if o.ImportChain != "" {
		return nil, errors.New("datadir: importing an issuing CA into a PKCS#11 token is not supported; init with the token's keys instead")
	}
	tk := &tokenKeys{cfg: cfg}
	var err error
	parse := func(name, s string) (*keys.PKCS11URI, error) {
		if s == "" {
			return nil, nil
		}
		u, err := keys.ParsePKCS11URI(s)
		if err != nil {
			return nil, fmt.Errorf("datadir: %s: %w", name, err)
		}
		tk.pinInURI = tk.pinInURI || u.PinValue != ""
		return u, nil
	}
	if tk.base, err = parse("the token URI", t.Token); err != nil {
		return nil, err
	}
	if tk.issuingURI, err = parse("the issuing key URI", t.IssuingKey); err != nil {
		return nil, err
	}
	if tk.rootURI, err = parse("the root key URI", t.RootKey); err != nil {
		return nil, err
	}
	if tk.base == nil {
		// Keys still to be generated go into the token of a given key.
		given := tk.issuingURI
		if given == nil {
			given = tk.rootURI
		}
		b := *given
		b.Object, b.ID, b.Type = "", nil, ""
		tk.base = &b
	}
	if t.PINFile != "" {
		if _, err := os.Stat(t.PINFile); err != nil {
			return nil, fmt.Errorf("datadir: the PKCS#11 PIN file: %w", err)
		}
	}
	tk.hsm = keys.NewHSM(keys.HSMConfig{Module: t.Module, PINFile: t.PINFile})
	cfg.PKCS11 = config.PKCS11{Module: t.Module, PINFile: t.PINFile}
	if tk.pinInURI && os.Getenv(keys.PINEnv) == "" && t.PINFile == "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the PKCS#11 PIN was given in a URI and is not kept; mailca serve, issue and crl read it from %s or [pkcs11] pin_file", keys.PINEnv))
	}
	return tk, nil
}

func (tk *tokenKeys) make(root bool, t keys.Type) (crypto.Signer, error) {
	given, label := tk.issuingURI, IssuingKeyLabel
	if root {
		given, label = tk.rootURI, RootKeyLabel
	}
	var (
		s   crypto.Signer
		u   *keys.PKCS11URI
		err error
	)
	if given != nil {
		s, err = tk.hsm.Signer(given)
		u = given
	} else {
		want := *tk.base
		want.Object = label
		s, u, err = tk.hsm.Generate(&want, t)
	}
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	stored := *u
	stored.PinValue = ""
	if root {
		tk.cfg.CA.RootKey = stored.String()
	} else {
		tk.cfg.CA.Key = stored.String()
	}
	return s, nil
}

func (tk *tokenKeys) keep(_, _ crypto.Signer) (string, error) {
	return fmt.Sprintf("the CA keys are in the PKCS#11 token; the root key is %s: for production, keep the root in a token that is offline (and sign the root's CRL yearly with 'mailca ca root-crl')", tk.cfg.CA.RootKey), nil
}

// OpenKey returns the CA private key that spec names: a pkcs11: URI,
// opened as cfg's [pkcs11] section says, or a key file decrypted with the
// configured passphrase. The returned function releases the key's PKCS#11
// sessions (it does nothing for a file).
func OpenKey(cfg *config.Config, spec string) (crypto.Signer, func() error, error) {
	if keys.IsPKCS11URI(spec) {
		u, err := keys.ParsePKCS11URI(spec)
		if err != nil {
			return nil, nil, err
		}
		hsm := keys.NewHSM(keys.HSMConfig{Module: cfg.PKCS11.Module, PINFile: cfg.Path(cfg.PKCS11.PINFile)})
		s, err := hsm.Signer(u)
		if err != nil {
			hsm.Close()
			return nil, nil, err
		}
		return s, hsm.Close, nil
	}
	pass, err := keys.Passphrase(cfg.Path(cfg.CA.PassphraseFile))
	if err != nil {
		return nil, nil, err
	}
	key, err := keys.LoadFile(cfg.Path(spec), pass)
	if err != nil {
		return nil, nil, err
	}
	return key, func() error { return nil }, nil
}
