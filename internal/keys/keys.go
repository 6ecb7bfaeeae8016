// Package keys generates CA and subscriber keys and keeps CA keys encrypted at rest.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
)

// Type names a key algorithm and size that mailca generates and accepts for CAs.
type Type string

// The key types the S/MIME Baseline Requirements (section 6.1.5) allow and
// mail clients read. Ed25519 is left out on purpose: Outlook and Apple Mail
// do not accept it in S/MIME certificates.
const (
	ECDSAP256 Type = "ecdsa-p256"
	ECDSAP384 Type = "ecdsa-p384"
	RSA2048   Type = "rsa-2048"
	RSA3072   Type = "rsa-3072"
	RSA4096   Type = "rsa-4096"
)

// Types lists every supported Type, the default first.
var Types = []Type{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096}

// ParseType returns the Type named s, or an error that lists the valid names.
func ParseType(s string) (Type, error) {
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("keys: unknown key type %q (want one of %v)", s, Types)
}

// Generate returns a new private key of type t drawn from rand.
func Generate(rand io.Reader, t Type) (crypto.Signer, error) {
	switch t {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand)
	case RSA2048:
		return rsa.GenerateKey(rand, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand, 4096)
	}
	return nil, fmt.Errorf("keys: unknown key type %q", t)
}

// MustGenerate is Generate from crypto/rand for tests and examples; it panics on error.
func MustGenerate(t Type) crypto.Signer {
	k, err := Generate(rand.Reader, t)
	if err != nil {
		panic(err)
	}
	return k
}

// TypeOf returns the Type of a public key, or an error when the key is not
// one mailca uses for a CA.
func TypeOf(pub crypto.PublicKey) (Type, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, nil
		case elliptic.P384():
			return ECDSAP384, nil
		}
		return "", fmt.Errorf("keys: unsupported curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return "", fmt.Errorf("keys: unsupported RSA modulus of %d bits", k.N.BitLen())
	}
	return "", fmt.Errorf("keys: unsupported public key type %T", pub)
}
