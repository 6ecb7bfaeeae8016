package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"image/png"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// passwordParams are OWASP's first recommended argon2id configuration
// (Password Storage Cheat Sheet): 19 MiB of memory, 2 iterations, 1 lane.
// A login then costs one core some tens of milliseconds and 19 MiB for that
// time. 64 MiB would cost an attacker with a stolen database about three
// times more per guess, but would also let a burst of concurrent login
// attempts, from many addresses and so past the per-address throttle,
// take three times as much of a small server's memory; the TOTP second
// factor and the lockout protect the live service, so the hash only has to
// slow an offline search of at least 12-character passwords.
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// hashPassword returns the argon2id hash of password in PHC string format.
func hashPassword(password string) (string, error) {
	return argon2id.CreateHash(password, passwordParams)
}

// checkPassword reports whether password matches hash, in constant time.
func checkPassword(password, hash string) bool {
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	return err == nil && ok
}

// tokenBytes is the size of session and join tokens: 256 bits.
const tokenBytes = 32

// newToken returns a random token in URL-safe form and its hash, the only
// form in which it is stored.
func newToken() (token string, hash []byte) {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	token = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, h[:]
}

// tokenHash returns the stored form of token, and false when token is not
// shaped like one newToken made, so that junk never reaches the database.
func tokenHash(token string) ([]byte, bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(token))
	return h[:], true
}

// The TOTP parameters (RFC 6238): what every authenticator app supports.
const (
	totpPeriod = 30 * time.Second
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps either side of now: a clock a little off still works
)

// TOTPKey is a new TOTP secret for enrolment in an authenticator app.
type TOTPKey struct {
	Secret string // base32, no padding
	URL    string // otpauth://totp/...
	QR     []byte // PNG, 200x200, of URL
	// Sealed is what the join form carries back to Join: the secret with
	// a MAC that binds it to the join token.
	Sealed string
}

// NewTOTPKey returns a new random TOTP secret (160 bits, SHA-1, 6 digits,
// 30 seconds) for the account email, labelled with the service's issuer,
// and sealed for the join token token.
func (s *Service) NewTOTPKey(token, email string) (*TOTPKey, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: s.issuer, AccountName: email, Period: uint(totpPeriod / time.Second),
		SecretSize: 20, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, err
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	sealed, err := s.seal(token, key.Secret())
	if err != nil {
		return nil, err
	}
	return &TOTPKey{Secret: key.Secret(), URL: key.URL(), QR: buf.Bytes(), Sealed: sealed}, nil
}

// sealKeyName names the seal key in the store.
const sealKeyName = "join-totp-seal"

// joinKey returns the key that seals join forms' TOTP secrets. It is kept
// in the database, so that a form served by one node is checked by any
// other, and after a restart.
func (s *Service) joinKey() ([]byte, error) {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if s.sealKey != nil {
		return s.sealKey, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh) // never fails
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, err := s.store.AuthKey(ctx, sealKeyName, fresh)
	if err != nil {
		return nil, err
	}
	if len(key) < 32 {
		return nil, errors.New("auth: the stored seal key is too short")
	}
	s.sealKey = key
	return key, nil
}

// seal returns secret bound to token: "SECRET.MAC", where MAC is the
// HMAC-SHA256, under the random key shared through the database, of the
// token's hash and the secret. Only mailca made it, for this token: a
// secret chosen by the person joining (and so perhaps known to someone
// else) fails.
func (s *Service) seal(token, secret string) (string, error) {
	key, err := s.joinKey()
	if err != nil {
		return "", err
	}
	h, _ := tokenHash(token)
	m := hmac.New(sha256.New, key)
	m.Write(h)
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return secret + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// UnsealSecret returns the TOTP secret of sealed (TOTPKey.Sealed), and
// false when it was not sealed by this Service for token.
func (s *Service) UnsealSecret(token, sealed string) (string, bool) {
	secret, _, ok := strings.Cut(sealed, ".")
	if !ok || len(sealed) > 512 {
		return "", false
	}
	if _, ok := tokenHash(token); !ok {
		return "", false
	}
	want, err := s.seal(token, secret)
	return secret, err == nil && hmac.Equal([]byte(want), []byte(sealed))
}

// validSecret reports whether secret is base32 of at least 128 bits.
func validSecret(secret string) bool {
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	return err == nil && len(b) >= 16
}

// totpStep returns the latest time step within the skew of now whose code
// is code, and false when there is none. A code is compared with every
// step in the window, so the time taken does not say which matched.
func totpStep(secret, code string, now time.Time) (int64, bool) {
	if len(code) != totpDigits.Length() {
		return 0, false
	}
	cur := now.Unix() / int64(totpPeriod/time.Second)
	var step int64
	found := false
	for st := cur - totpSkew; st <= cur+totpSkew; st++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(st*int64(totpPeriod/time.Second), 0),
			totp.ValidateOpts{Period: uint(totpPeriod / time.Second), Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false
		}
		if hmac.Equal([]byte(want), []byte(code)) {
			step, found = st, true
		}
	}
	return step, found
}
