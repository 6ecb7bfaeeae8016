package keys

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// PINEnv is the environment variable that carries the PKCS#11 user PIN; it
// takes precedence over a PIN file.
const PINEnv = "MAILCA_PKCS11_PIN"

// DefaultMaxSessions is how many PKCS#11 sessions an HSM opens per token
// when HSMConfig.MaxSessions is zero: enough for the signing goroutines of
// one mailca process, few enough for small tokens.
const DefaultMaxSessions = 8

// ErrWrongPIN is returned when a token refuses the user PIN.
var ErrWrongPIN = errors.New("keys: the PKCS#11 token refused the PIN")

// ErrNoKey is returned when no private key on the token matches a URI.
var ErrNoKey = errors.New("keys: no matching private key on the PKCS#11 token")

// HSMConfig says how to reach PKCS#11 tokens. The zero value is usable when
// every URI carries module-path and the PIN comes from MAILCA_PKCS11_PIN.
type HSMConfig struct {
	// Module is the PKCS#11 library loaded for URIs without module-path.
	Module string
	// PINFile names a file whose first line is the user PIN, used when
	// MAILCA_PKCS11_PIN is unset and a URI has no pin-source.
	PINFile string
	// MaxSessions bounds the sessions opened per token (default
	// DefaultMaxSessions, at least 2).
	MaxSessions int
}

// HSM finds and generates CA keys on PKCS#11 tokens. It keeps one
// crypto11.Context, with its session pool and login, per module and token,
// shared by every key on that token. It is safe for concurrent use; Close
// ends the sessions, after which its signers fail. PKCS#11 needs a mailca
// built with cgo; without, every method but Close returns ErrNoCgo.
type HSM struct {
	cfg HSMConfig

	mu     sync.Mutex
	tokens map[string]*token
}

// NewHSM returns an HSM that opens tokens as cfg says, on first use.
func NewHSM(cfg HSMConfig) *HSM {
	return &HSM{cfg: cfg, tokens: map[string]*token{}}
}

// ErrNoCgo is returned by an HSM in a mailca built without cgo, which
// cannot load PKCS#11 modules.
var ErrNoCgo = errors.New("keys: this mailca was built without cgo and cannot load PKCS#11 modules")

// module returns the PKCS#11 library for u.
func (h *HSM) module(u *PKCS11URI) (string, error) {
	if u.ModulePath != "" {
		return u.ModulePath, nil
	}
	if h.cfg.Module != "" {
		return h.cfg.Module, nil
	}
	return "", errors.New("keys: no PKCS#11 module: add module-path=/path/to/module.so to the URI or set [pkcs11] module")
}

// pin returns the user PIN for u: its pin-value (command line only), else
// MAILCA_PKCS11_PIN, else the file of its pin-source, else the configured
// PIN file.
func (h *HSM) pin(u *PKCS11URI) (string, error) {
	if u.PinValue != "" {
		return u.PinValue, nil
	}
	if v, ok := os.LookupEnv(PINEnv); ok {
		if v == "" {
			return "", fmt.Errorf("keys: %s is set but empty", PINEnv)
		}
		return v, nil
	}
	file := h.cfg.PINFile
	if u.PinSource != "" {
		var err error
		if file, err = pinFile(u.PinSource); err != nil {
			return "", err
		}
	}
	if file == "" {
		return "", fmt.Errorf("keys: no PIN for PKCS#11 token %s: set %s, add pin-source=file:/path to the URI, or set [pkcs11] pin_file", tokenName(u), PINEnv)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("keys: reading the PKCS#11 PIN: %w", err)
	}
	p := strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	if p == "" {
		return "", fmt.Errorf("keys: the PKCS#11 PIN file %s is empty", file)
	}
	return p, nil
}

func tokenName(u *PKCS11URI) string {
	switch {
	case u.Token != "":
		return fmt.Sprintf("%q", u.Token)
	case u.Serial != "":
		return fmt.Sprintf("with serial %q", u.Serial)
	case u.SlotID != nil:
		return fmt.Sprintf("in slot %d", *u.SlotID)
	}
	return "(none)"
}

func keyName(u *PKCS11URI) string {
	var parts []string
	if u.Object != "" {
		parts = append(parts, fmt.Sprintf("label %q", u.Object))
	}
	if len(u.ID) > 0 {
		parts = append(parts, fmt.Sprintf("id %x", u.ID))
	}
	return strings.Join(parts, ", ")
}
