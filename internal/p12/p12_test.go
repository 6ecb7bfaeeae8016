package p12_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/p12"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// friendlyName has non-ASCII letters so that a wrong BMPString encoding shows.
const friendlyName = "Zoë Müller (S/MIME)"

// identity is a subscriber key with its certificate and chain.
type identity struct {
	key   crypto.Signer
	cert  *x509.Certificate
	chain []*x509.Certificate // issuing CA, root
}

// keyTypes are the subscriber keys Encode supports.
var keyTypes = []struct {
	name string
	gen  func() (crypto.Signer, error)
}{
	{"ECDSA-P256", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	{"RSA-2048", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
}

var formats = []p12.Format{p12.Legacy, p12.Modern}

// newIdentity returns a subscriber certificate for key, issued by an
// intermediate CA under a root, as the CA would hand it out.
func newIdentity(tb testing.TB, key crypto.Signer) identity {
	tb.Helper()
	root, rootKey := newCA(tb, "Test Root", nil, nil)
	sub, subKey := newCA(tb, "Test Issuing CA", root, rootKey)
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(3),
		Subject:        pkix.Name{CommonName: "Zoë Müller"},
		EmailAddresses: []string{"zoe@example.org"},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(24 * time.Hour),
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	}
	return identity{
		key:   key,
		cert:  sign(tb, tmpl, sub, key.Public(), subKey),
		chain: []*x509.Certificate{sub, root},
	}
}

// newCA returns a CA certificate and its key, self-signed if parent is nil.
func newCA(tb testing.TB, name string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	serial := int64(1)
	if parent == nil {
		parentKey = key
	} else {
		serial = 2
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if parent == nil {
		parent = tmpl
	}
	return sign(tb, tmpl, parent, key.Public(), parentKey), key
}

func sign(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}

// encode encodes id under password, failing the test on error.
func encode(tb testing.TB, id identity, password string, f p12.Format) []byte {
	tb.Helper()
	der, err := p12.Encode(rand.Reader, id.key, id.cert, id.chain, friendlyName, password, f)
	if err != nil {
		tb.Fatalf("Encode(%v) error: %v", f, err)
	}
	return der
}

func TestEncodeRoundTrip(t *testing.T) {
	const password = "correct horse battery staple ü"
	for _, kt := range keyTypes {
		key, err := kt.gen()
		if err != nil {
			t.Fatal(err)
		}
		id := newIdentity(t, key)
		for _, f := range formats {
			t.Run(kt.name+"/"+f.String(), func(t *testing.T) {
				der := encode(t, id, password, f)

				gotKey, gotCert, gotChain, err := pkcs12.DecodeChain(der, password)
				if err != nil {
					t.Fatalf("DecodeChain error: %v", err)
				}
				if k, ok := gotKey.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !k.Equal(id.key) {
					t.Errorf("DecodeChain key = %T, want the encoded %T", gotKey, id.key)
				}
				if !gotCert.Equal(id.cert) {
					t.Errorf("DecodeChain cert = %q, want %q", gotCert.Subject, id.cert.Subject)
				}
				if len(gotChain) != len(id.chain) {
					t.Fatalf("DecodeChain chain has %d certificates, want %d", len(gotChain), len(id.chain))
				}
				for i := range gotChain {
					if !gotChain[i].Equal(id.chain[i]) {
						t.Errorf("DecodeChain chain[%d] = %q, want %q", i, gotChain[i].Subject, id.chain[i].Subject)
					}
				}

				checkAttributes(t, der, password, id)
			})
		}
	}
}

// checkAttributes checks that the key bag and the leaf's cert bag, and only
// those, carry friendlyName and the localKeyId that pairs them.
func checkAttributes(t *testing.T, der []byte, password string, id identity) {
	t.Helper()
	//lint:ignore SA1019 ToPEM is deprecated for decoding keys, but it is the only go-pkcs12 API that shows bag attributes.
	blocks, err := pkcs12.ToPEM(der, password)
	if err != nil {
		t.Fatalf("ToPEM error: %v", err)
	}
	sum := sha1.Sum(id.cert.Raw)
	wantID := hex.EncodeToString(sum[:])
	var keys, leaves, chain int
	for _, b := range blocks {
		switch {
		case b.Type == "PRIVATE KEY":
			keys++
		case b.Type == "CERTIFICATE" && string(b.Bytes) == string(id.cert.Raw):
			leaves++
		case b.Type == "CERTIFICATE":
			chain++
			if len(b.Headers) != 0 {
				t.Errorf("chain certificate has attributes %v, want none", b.Headers)
			}
			continue
		default:
			t.Errorf("unexpected bag %q", b.Type)
			continue
		}
		if got := b.Headers["friendlyName"]; got != friendlyName {
			t.Errorf("%s bag friendlyName = %q, want %q", b.Type, got, friendlyName)
		}
		if got := b.Headers["localKeyId"]; got != wantID {
			t.Errorf("%s bag localKeyId = %s, want %s", b.Type, got, wantID)
		}
	}
	if keys != 1 || leaves != 1 || chain != len(id.chain) {
		t.Errorf("bags: %d keys, %d leaf and %d chain certificates; want 1, 1, %d", keys, leaves, chain, len(id.chain))
	}
}

func TestEncodeWrongPassword(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := newIdentity(t, key)
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			der := encode(t, id, "right", f)
			if _, _, _, err := pkcs12.DecodeChain(der, "wrong"); !errors.Is(err, pkcs12.ErrIncorrectPassword) {
				t.Errorf("DecodeChain with wrong password: error %v, want %v", err, pkcs12.ErrIncorrectPassword)
			}
		})
	}
}

func TestEncodeEmptyChain(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := newIdentity(t, key)
	der, err := p12.Encode(rand.Reader, id.key, id.cert, nil, "", "pw", p12.Modern)
	if err != nil {
		t.Fatalf("Encode without chain error: %v", err)
	}
	_, cert, chain, err := pkcs12.DecodeChain(der, "pw")
	if err != nil {
		t.Fatalf("DecodeChain error: %v", err)
	}
	if !cert.Equal(id.cert) || len(chain) != 0 {
		t.Errorf("DecodeChain = %q and %d chain certificates, want %q and none", cert.Subject, len(chain), id.cert.Subject)
	}
}

func TestEncodeRejects(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := newIdentity(t, key)
	tests := []struct {
		name     string
		key      crypto.PrivateKey
		cert     *x509.Certificate
		chain    []*x509.Certificate
		fname    string
		password string
		format   p12.Format
	}{
		{"key of another certificate", other, id.cert, id.chain, "a", "pw", p12.Legacy},
		{"unsupported key type", "not a key", id.cert, id.chain, "a", "pw", p12.Legacy},
		{"nil key", nil, id.cert, id.chain, "a", "pw", p12.Legacy},
		{"nil certificate", key, nil, id.chain, "a", "pw", p12.Legacy},
		{"nil chain certificate", key, id.cert, []*x509.Certificate{nil}, "a", "pw", p12.Legacy},
		{"password not UTF-8", key, id.cert, id.chain, "a", "\xff", p12.Modern},
		{"friendly name not UTF-8", key, id.cert, id.chain, "\xff", "pw", p12.Modern},
		{"unknown format", key, id.cert, id.chain, "a", "pw", p12.Format(7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := p12.Encode(rand.Reader, tt.key, tt.cert, tt.chain, tt.fname, tt.password, tt.format)
			if err == nil {
				t.Errorf("Encode = %d bytes, want error", len(der))
			}
		})
	}
}

func TestEncodeRandError(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := newIdentity(t, key)
	for _, f := range formats {
		if _, err := p12.Encode(failingReader{}, id.key, id.cert, id.chain, friendlyName, "pw", f); !errors.Is(err, errNoEntropy) {
			t.Errorf("Encode(%v) with failing rand: error %v, want %v", f, err, errNoEntropy)
		}
	}
}

var errNoEntropy = errors.New("no entropy")

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errNoEntropy }

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    p12.Format
		wantErr bool
	}{
		{"legacy", p12.Legacy, false},
		{"modern", p12.Modern, false},
		{"Modern", 0, true},
		{"", 0, true},
		{"pbes2", 0, true},
	}
	for _, tt := range tests {
		got, err := p12.ParseFormat(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatString(t *testing.T) {
	tests := []struct {
		f    p12.Format
		want string
	}{
		{p12.Legacy, "legacy"},
		{p12.Modern, "modern"},
		{p12.Format(9), "Format(9)"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Format(%d).String() = %q, want %q", int(tt.f), got, tt.want)
		}
	}
}

// FuzzParseFormat checks that ParseFormat accepts exactly the names that
// String returns.
func FuzzParseFormat(f *testing.F) {
	for _, s := range []string{"legacy", "modern", "", "LEGACY", "modern "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := p12.ParseFormat(s)
		if err != nil {
			return
		}
		if got.String() != s {
			t.Errorf("ParseFormat(%q) = %v, whose String differs", s, got)
		}
	})
}
