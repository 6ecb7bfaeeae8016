//go:build !cgo

package keys

import "crypto"

// HavePKCS11 reports whether this build can load PKCS#11 modules (it
// needs cgo).
const HavePKCS11 = false

// token is never opened without cgo.
type token struct{}

// Close does nothing: without cgo no token is ever opened.
func (h *HSM) Close() error { return nil }

// Signer returns ErrNoCgo.
func (h *HSM) Signer(u *PKCS11URI) (crypto.Signer, error) { return nil, ErrNoCgo }

// Generate returns ErrNoCgo.
func (h *HSM) Generate(u *PKCS11URI, t Type) (crypto.Signer, *PKCS11URI, error) {
	return nil, nil, ErrNoCgo
}
