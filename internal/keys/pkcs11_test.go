//go:build cgo

package keys_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
)

// newHSM returns an HSM on a fresh SoftHSM2 token, closed when the test ends.
func newHSM(t *testing.T, cfg keys.HSMConfig) (*keys.HSM, *testkit.SoftHSM) {
	t.Helper()
	s := testkit.NewSoftHSM(t)
	t.Setenv(keys.PINEnv, s.PIN)
	h := keys.NewHSM(cfg)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h, s
}

func mustURI(t *testing.T, s string) *keys.PKCS11URI {
	t.Helper()
	u, err := keys.ParsePKCS11URI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// verify checks sig over digest under pub as the issuing engine signs:
// ECDSA ASN.1, RSA PKCS#1 v1.5.
func verify(t *testing.T, pub crypto.PublicKey, h crypto.Hash, digest, sig []byte) {
	t.Helper()
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			t.Errorf("ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, h, digest, sig); err != nil {
			t.Errorf("RSA PKCS#1 v1.5 signature: %v", err)
		}
	default:
		t.Fatalf("public key %T", pub)
	}
}

func TestHSMGenerateSignVerify(t *testing.T) {
	h, s := newHSM(t, keys.HSMConfig{})
	for _, kt := range keys.Types {
		t.Run(string(kt), func(t *testing.T) {
			gen, u, err := h.Generate(mustURI(t, s.URI("object="+string(kt))), kt)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if got, err := keys.TypeOf(gen.Public()); err != nil || got != kt {
				t.Errorf("TypeOf(generated key) = %v, %v; want %v", got, err, kt)
			}
			if len(u.ID) != 16 || u.Object != string(kt) || u.Type != "private" {
				t.Errorf("Generate returned URI %s; want a 16-byte id, object %s, type=private", u, kt)
			}
			// Found again by its URI, by id alone and by label alone.
			for _, find := range []*keys.PKCS11URI{
				mustURI(t, u.String()),
				{Token: s.Token, ModulePath: s.Module, ID: u.ID},
				{Token: s.Token, ModulePath: s.Module, Object: string(kt)},
			} {
				signer, err := h.Signer(find)
				if err != nil {
					t.Fatalf("Signer(%s): %v", find, err)
				}
				if !keys.SamePublicKey(signer.Public(), gen.Public()) {
					t.Fatalf("Signer(%s) found another key", find)
				}
				hash := crypto.SHA256
				if kt == keys.ECDSAP384 {
					hash = crypto.SHA384
				}
				hh := hash.New()
				hh.Write([]byte("mailca"))
				digest := hh.Sum(nil)
				sig, err := signer.Sign(rand.Reader, digest, hash)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				verify(t, signer.Public(), hash, digest, sig)
			}
			if _, _, err := h.Generate(mustURI(t, s.URI("object="+string(kt))), kt); err == nil {
				t.Errorf("a second key with the label %q was generated", kt)
			}
		})
	}
}

// TestHSMConcurrentSign signs from more goroutines than the pool has
// sessions: the pool must queue them, not fail.
func TestHSMConcurrentSign(t *testing.T) {
	h, s := newHSM(t, keys.HSMConfig{MaxSessions: 3})
	signer, _, err := h.Generate(mustURI(t, s.URI("object=k")), keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err == nil && !ecdsa.VerifyASN1(signer.Public().(*ecdsa.PublicKey), digest[:], sig) {
				err = errors.New("signature does not verify")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestHSMFindErrors(t *testing.T) {
	h, s := newHSM(t, keys.HSMConfig{Module: "/nonexistent/module.so"})
	if _, _, err := h.Generate(mustURI(t, s.URI("object=k")), keys.ECDSAP384); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		uri  *keys.PKCS11URI
		is   error // nil: any error
	}{
		{"missing label", mustURI(t, s.URI("object=other")), keys.ErrNoKey},
		{"missing id", mustURI(t, s.URI("id=%00")), keys.ErrNoKey},
		{"no key named", mustURI(t, s.URI()), nil},
		{"public type", mustURI(t, s.URI("object=k", "type=public")), nil},
		{"unknown token", mustURI(t, "pkcs11:token=nope;object=k?module-path="+s.Module), nil},
		{"configured module missing", mustURI(t, "pkcs11:token="+s.Token+";object=k"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Signer(tt.uri)
			if err == nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Signer(%s) = %v, want %v", tt.uri, err, tt.is)
			}
		})
	}
	// pkcs11:... without module-path uses the configured module.
	h2 := keys.NewHSM(keys.HSMConfig{Module: s.Module})
	defer h2.Close()
	if _, err := h2.Signer(mustURI(t, "pkcs11:token="+s.Token+";object=k")); err != nil {
		t.Errorf("Signer with the configured module: %v", err)
	}
}

func TestHSMPIN(t *testing.T) {
	s := testkit.NewSoftHSM(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "pin")
	bad := filepath.Join(dir, "bad-pin")
	os.WriteFile(good, []byte(s.PIN+"\n"), 0o600)
	os.WriteFile(bad, []byte("wrong-"+s.PIN+"\n"), 0o600)
	t.Setenv(keys.PINEnv, s.PIN)
	setup := keys.NewHSM(keys.HSMConfig{})
	if _, _, err := setup.Generate(mustURI(t, s.URI("object=k")), keys.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	tests := []struct {
		name    string
		env     *string // MAILCA_PKCS11_PIN; nil: unset
		pinFile string  // HSMConfig.PINFile
		uri     string
		wrong   bool // want ErrWrongPIN
		ok      bool
	}{
		{name: "environment", env: &s.PIN, uri: s.URI("object=k"), ok: true},
		{name: "configured file", pinFile: good, uri: s.URI("object=k"), ok: true},
		{name: "pin-source", uri: "pkcs11:token=" + s.Token + ";object=k?module-path=" + s.Module + "&pin-source=file:" + good, ok: true},
		{name: "pin-source beats configured file", pinFile: bad, uri: "pkcs11:token=" + s.Token + ";object=k?module-path=" + s.Module + "&pin-source=file:" + good, ok: true},
		{name: "pin-value", uri: s.URI("object=k") + "&pin-value=" + s.PIN, ok: true},
		{name: "wrong pin in environment", env: ptr("0000" + s.PIN), uri: s.URI("object=k"), wrong: true},
		{name: "wrong pin in file", pinFile: bad, uri: s.URI("object=k"), wrong: true},
		{name: "no pin", uri: s.URI("object=k")},
		{name: "empty environment", env: ptr(""), uri: s.URI("object=k")},
		{name: "missing pin file", pinFile: filepath.Join(dir, "none"), uri: s.URI("object=k")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != nil {
				t.Setenv(keys.PINEnv, *tt.env)
			} else {
				t.Setenv(keys.PINEnv, "")
				os.Unsetenv(keys.PINEnv)
			}
			h := keys.NewHSM(keys.HSMConfig{PINFile: tt.pinFile})
			defer h.Close()
			_, err := h.Signer(mustURI(t, tt.uri))
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Signer: %v", err)
			case !tt.ok && err == nil:
				t.Fatal("Signer succeeded")
			case tt.wrong && !errors.Is(err, keys.ErrWrongPIN):
				t.Errorf("Signer = %v, want ErrWrongPIN", err)
			}
			if err != nil && strings.Contains(err.Error(), s.PIN) {
				t.Errorf("error %q shows the PIN", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestHSMKeyAttributes reads back, through a second session, the
// attributes Generate gives a private key: sensitive, never extractable,
// signing only.
func TestHSMKeyAttributes(t *testing.T) {
	h, s := newHSM(t, keys.HSMConfig{})
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA2048} {
		if _, _, err := h.Generate(mustURI(t, s.URI("object="+string(kt))), kt); err != nil {
			t.Fatal(err)
		}
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: s.Module, TokenLabel: s.Token, Pin: s.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := map[crypto11.AttributeType]bool{
		crypto11.CkaSensitive: true, crypto11.CkaExtractable: false, crypto11.CkaPrivate: true,
		crypto11.CkaSign: true, crypto11.CkaDecrypt: false, crypto11.CkaToken: true,
	}
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA2048} {
		k, err := c.FindKeyPair(nil, []byte(kt))
		if err != nil || k == nil {
			t.Fatalf("FindKeyPair(%s) = %v, %v", kt, k, err)
		}
		for a, w := range want {
			if kt != keys.RSA2048 && a == crypto11.CkaDecrypt {
				continue
			}
			got, err := c.GetAttribute(k, a)
			if err != nil {
				t.Fatalf("%s: GetAttribute(%#x): %v", kt, a, err)
			}
			if isTrue := len(got.Value) == 1 && got.Value[0] == 1; isTrue != w {
				t.Errorf("%s: attribute %#x = %v, want %v", kt, a, got.Value, w)
			}
		}
	}
}

func TestHSMSignsSHA512(t *testing.T) {
	h, s := newHSM(t, keys.HSMConfig{})
	signer, _, err := h.Generate(mustURI(t, s.URI("object=r")), keys.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	d := sha512.Sum512([]byte("m"))
	sig, err := signer.Sign(rand.Reader, d[:], crypto.SHA512)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, signer.Public(), crypto.SHA512, d[:], sig)
}
