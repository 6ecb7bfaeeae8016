package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/mailca/mailca/internal/ca"
)

func csrDER(tb testing.TB, key any) []byte {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{EmailAddresses: []string{"x@example.com"}}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestParseCSR(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := csrDER(t, p256)
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-2] ^= 0x01
	tests := []struct {
		name string
		in   []byte
		want ca.Reason // 0 means accepted
	}{
		{"DER", good, 0},
		{"PEM", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: good}), 0},
		{"NEW CERTIFICATE REQUEST PEM", pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: good}), 0},
		{"certificate PEM", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good}), ca.BadCSR},
		{"garbage", []byte("hello"), ca.BadCSR},
		{"empty", nil, ca.BadCSR},
		{"truncated", good[:len(good)/2], ca.BadCSR},
		{"bad signature", badSig, ca.BadCSR},
		{"RSA 1024", csrDER(t, rsa1024), ca.WeakKey},
		{"P-224", csrDER(t, p224), ca.WeakKey},
		{"oversized", make([]byte, 70<<10), ca.BadCSR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ca.ParseCSR(tt.in)
			if tt.want == 0 {
				if err != nil || csr == nil {
					t.Fatalf("ParseCSR = %v, want success", err)
				}
				return
			}
			var rerr *ca.RequestError
			if !errors.As(err, &rerr) || rerr.Reason != tt.want {
				t.Fatalf("ParseCSR = %v, want reason %v", err, tt.want)
			}
		})
	}
}

func TestCheckSubscriberKey(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	odd := k.PublicKey
	odd.E = 3
	if err := ca.CheckSubscriberKey(&odd); err == nil {
		t.Errorf("CheckSubscriberKey accepted exponent 3")
	}
	if err := ca.CheckSubscriberKey(&k.PublicKey); err != nil {
		t.Errorf("CheckSubscriberKey(RSA 2048) = %v", err)
	}
}

// FuzzParseCSR feeds arbitrary bytes to the CSR parser: it must never panic,
// and whatever it accepts must carry a verified signature and an allowed key.
func FuzzParseCSR(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := csrDER(f, k)
	f.Add(good)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: good}))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := ca.ParseCSR(b)
		if err != nil {
			var rerr *ca.RequestError
			if !errors.As(err, &rerr) {
				t.Fatalf("ParseCSR error %v is not a *RequestError", err)
			}
			return
		}
		if csr.CheckSignature() != nil {
			t.Fatalf("accepted a CSR whose signature does not verify")
		}
		if ca.CheckSubscriberKey(csr.PublicKey) != nil {
			t.Fatalf("accepted a CSR with a refused key")
		}
	})
}
