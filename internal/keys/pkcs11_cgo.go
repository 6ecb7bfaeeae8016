//go:build cgo

package keys

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// HavePKCS11 reports whether this build can load PKCS#11 modules (it
// needs cgo).
const HavePKCS11 = true

// token is one opened module and token.
type token struct{ c *crypto11.Context }

// Close logs out of and closes every token h opened.
func (h *HSM) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for k, t := range h.tokens {
		if err := t.c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("keys: closing PKCS#11 token: %w", err))
		}
		delete(h.tokens, k)
	}
	return errors.Join(errs...)
}

// Signer returns the private key u names (by id, by object label, or
// both) as a crypto.Signer whose Sign runs in the token. ECDSA keys sign a
// digest of any size and return an ASN.1 signature; RSA keys sign PKCS#1
// v1.5 for a crypto.Hash option and PSS for *rsa.PSSOptions. The errors are
// ErrWrongPIN, ErrNoKey, a URI without id or object, a key of a type
// mailca does not use, or a failure to load the module or find the token.
func (h *HSM) Signer(u *PKCS11URI) (crypto.Signer, error) {
	if u.Type != "" && u.Type != "private" {
		return nil, fmt.Errorf("keys: PKCS#11 URI type=%s does not name a private key", u.Type)
	}
	if len(u.ID) == 0 && u.Object == "" {
		return nil, errors.New("keys: PKCS#11 URI names no key: add object=LABEL or id=%XX%XX")
	}
	c, err := h.token(u)
	if err != nil {
		return nil, err
	}
	var id, label []byte
	if len(u.ID) > 0 {
		id = u.ID
	}
	if u.Object != "" {
		label = []byte(u.Object)
	}
	found, err := c.FindKeyPairs(id, label)
	if err != nil {
		return nil, fmt.Errorf("keys: searching PKCS#11 token %s: %w", tokenName(u), err)
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w (token %s, %s)", ErrNoKey, tokenName(u), keyName(u))
	case 1:
	default:
		return nil, fmt.Errorf("keys: %d private keys on PKCS#11 token %s match %s; add id= to the URI", len(found), tokenName(u), keyName(u))
	}
	if _, err := TypeOf(found[0].Public()); err != nil {
		return nil, err
	}
	return found[0], nil
}

// Generate makes a key pair of type t inside the token u names, labelled
// u.Object and with a random 16-byte CKA_ID. The private key is sensitive,
// not extractable and may only sign. It returns the signer and the URI
// that finds the key again (without any PIN). A key already labelled
// u.Object on the token is an error: labels must stay unambiguous.
func (h *HSM) Generate(u *PKCS11URI, t Type) (crypto.Signer, *PKCS11URI, error) {
	if u.Object == "" {
		return nil, nil, errors.New("keys: generating a key in a PKCS#11 token needs a label (object=)")
	}
	c, err := h.token(u)
	if err != nil {
		return nil, nil, err
	}
	existing, err := c.FindKeyPairs(nil, []byte(u.Object))
	if err != nil {
		return nil, nil, fmt.Errorf("keys: searching PKCS#11 token %s: %w", tokenName(u), err)
	}
	if len(existing) > 0 {
		return nil, nil, fmt.Errorf("keys: PKCS#11 token %s already holds a key labelled %q; use it by its URI or choose another label", tokenName(u), u.Object)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, nil, err
	}
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(u.Object))
	if err != nil {
		return nil, nil, fmt.Errorf("keys: %w", err)
	}
	priv := pub.Copy()
	// A CA key signs and does nothing else; it never leaves the token.
	for _, a := range []struct {
		t crypto11.AttributeType
		v bool
	}{{crypto11.CkaSensitive, true}, {crypto11.CkaExtractable, false}, {crypto11.CkaPrivate, true}, {crypto11.CkaSign, true}} {
		if err := priv.Set(a.t, a.v); err != nil {
			return nil, nil, fmt.Errorf("keys: %w", err)
		}
	}
	var s crypto.Signer
	switch t {
	case ECDSAP256, ECDSAP384:
		curve := elliptic.P256()
		if t == ECDSAP384 {
			curve = elliptic.P384()
		}
		s, err = c.GenerateECDSAKeyPairWithAttributes(pub, priv, curve)
	case RSA2048, RSA3072, RSA4096:
		bits := map[Type]int{RSA2048: 2048, RSA3072: 3072, RSA4096: 4096}[t]
		if err = priv.Set(crypto11.CkaDecrypt, false); err == nil {
			err = pub.Set(crypto11.CkaEncrypt, false)
		}
		if err == nil {
			s, err = c.GenerateRSAKeyPairWithAttributes(pub, priv, bits)
		}
	default:
		return nil, nil, fmt.Errorf("keys: unknown key type %q", t)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("keys: generating a %s key in PKCS#11 token %s: %w", t, tokenName(u), err)
	}
	out := *u
	out.ID, out.Type, out.PinValue = id, "private", ""
	return s, &out, nil
}

// token returns the context of u's module and token, opening it and
// logging in on first use.
func (h *HSM) token(u *PKCS11URI) (*crypto11.Context, error) {
	module, err := h.module(u)
	if err != nil {
		return nil, err
	}
	key := module + "\x00" + u.Token + "\x00" + u.Serial
	if u.SlotID != nil {
		key += fmt.Sprintf("\x00%d", *u.SlotID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.tokens[key]; ok {
		return t.c, nil
	}
	if _, err := os.Stat(module); err != nil {
		return nil, fmt.Errorf("keys: PKCS#11 module: %w", err)
	}
	pin, err := h.pin(u)
	if err != nil {
		return nil, err
	}
	max := h.cfg.MaxSessions
	if max == 0 {
		max = DefaultMaxSessions
	}
	cfg := &crypto11.Config{Path: module, Pin: pin, MaxSessions: max}
	switch {
	case u.Token != "":
		cfg.TokenLabel = u.Token
	case u.Serial != "":
		cfg.TokenSerial = u.Serial
	default:
		cfg.SlotNumber = u.SlotID
	}
	c, err := crypto11.Configure(cfg)
	if err != nil {
		return nil, loginError(err, u)
	}
	h.tokens[key] = &token{c}
	return c, nil
}

// loginError turns a crypto11.Configure failure into a message an
// operator can act on. PKCS#11 errors never contain the PIN.
func loginError(err error, u *PKCS11URI) error {
	var p11 pkcs11.Error
	if errors.As(err, &p11) {
		switch p11 {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE:
			return fmt.Errorf("%w (token %s: %v)", ErrWrongPIN, tokenName(u), p11)
		case pkcs11.CKR_PIN_LOCKED:
			return fmt.Errorf("%w (token %s: the PIN is locked after too many failures; unlock it with the security officer PIN)", ErrWrongPIN, tokenName(u))
		}
	}
	if strings.Contains(err.Error(), "could not find PKCS#11 token") {
		return fmt.Errorf("keys: PKCS#11 token %s not found in the module's slots", tokenName(u))
	}
	return fmt.Errorf("keys: opening PKCS#11 token %s: %w", tokenName(u), err)
}
