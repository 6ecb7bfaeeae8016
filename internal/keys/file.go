package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/youmark/pkcs8"
)

// PassphraseEnv is the environment variable that carries the CA key
// passphrase; it takes precedence over a passphrase file.
const PassphraseEnv = "MAILCA_KEY_PASSPHRASE"

// minPassphrase is the shortest passphrase accepted for encrypting a key.
// Shorter ones are almost always a mistake (an empty variable, a typo).
const minPassphrase = 12

// pbkdf2Iterations follows OWASP's 2023 figure for PBKDF2-HMAC-SHA256. A CA
// key is decrypted once per process start, so the cost is paid rarely.
const pbkdf2Iterations = 600_000

// ErrWrongPassphrase is returned when an encrypted key does not decrypt.
var ErrWrongPassphrase = errors.New("keys: wrong passphrase or corrupt key file")

// Passphrase returns the CA key passphrase: the value of MAILCA_KEY_PASSPHRASE
// when set, else the first line of file. It never returns an empty passphrase.
func Passphrase(file string) ([]byte, error) {
	if v, ok := os.LookupEnv(PassphraseEnv); ok {
		if len(v) < minPassphrase {
			return nil, fmt.Errorf("keys: %s is shorter than %d characters", PassphraseEnv, minPassphrase)
		}
		return []byte(v), nil
	}
	if file == "" {
		return nil, fmt.Errorf("keys: no passphrase: set %s or configure a passphrase file", PassphraseEnv)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("keys: reading passphrase: %w", err)
	}
	p := strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	if len(p) < minPassphrase {
		return nil, fmt.Errorf("keys: passphrase in %s is shorter than %d characters", file, minPassphrase)
	}
	return []byte(p), nil
}

// EncryptPEM returns key as an "ENCRYPTED PRIVATE KEY" PEM block: PKCS#8
// under PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, which OpenSSL reads.
func EncryptPEM(key crypto.Signer, passphrase []byte) ([]byte, error) {
	if len(passphrase) < minPassphrase {
		return nil, fmt.Errorf("keys: passphrase shorter than %d characters", minPassphrase)
	}
	der, err := pkcs8.MarshalPrivateKey(key, passphrase, &pkcs8.Opts{
		Cipher: pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{
			SaltSize:       16,
			IterationCount: pbkdf2Iterations,
			HMACHash:       crypto.SHA256,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("keys: encrypting key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}

// WriteEncryptedFile writes key encrypted under passphrase to path with mode
// 0600. It refuses to replace an existing file: a CA key is never overwritten.
func WriteEncryptedFile(path string, key crypto.Signer, passphrase []byte) error {
	b, err := EncryptPEM(key, passphrase)
	if err != nil {
		return err
	}
	return WriteNewFile(path, b, 0o600)
}

// WriteNewFile creates path with the given mode and contents, failing if it
// already exists. A partly written file is removed.
func WriteNewFile(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("keys: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("keys: writing %s: %w", path, err)
	}
	return f.Close()
}

// LoadFile reads a private key from a PEM file. An "ENCRYPTED PRIVATE KEY"
// is decrypted with passphrase; unencrypted PKCS#8, SEC 1 and PKCS#1 keys are
// accepted too so that an existing CA key can be imported (it is then stored
// encrypted). Legacy OpenSSL "Proc-Type: 4,ENCRYPTED" PEM is refused.
func LoadFile(path string, passphrase []byte) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	k, err := ParsePEM(b, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// ParsePEM parses the first private key PEM block in b (see LoadFile).
func ParsePEM(b []byte, passphrase []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("keys: no private key PEM block found")
		}
		if _, legacy := block.Headers["Proc-Type"]; legacy {
			return nil, errors.New("keys: legacy encrypted PEM is not supported; convert with 'openssl pkcs8 -topk8'")
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "ENCRYPTED PRIVATE KEY":
			k, _, err = pkcs8.ParsePrivateKey(block.Bytes, passphrase)
			if err != nil {
				return nil, ErrWrongPassphrase
			}
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keys: parsing %s: %w", strings.ToLower(block.Type), err)
		}
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("keys: unsupported private key type %T", k)
	}
}

// SPKIHash returns the SHA-256 of the DER SubjectPublicKeyInfo of pub: the
// identity of a key, used to refuse one key in two certificates.
func SPKIHash(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	h := sha256.Sum256(der)
	return h[:], nil
}

// SamePublicKey reports whether a and b are the same public key.
func SamePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}
