package p12_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"time"

	"github.com/mailca/mailca/internal/p12"
)

func ExampleEncode() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	// In the CA the certificate comes from the issuing CA; a self-signed
	// one keeps the example short.
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(1),
		Subject:        pkix.Name{CommonName: "Alice"},
		EmailAddresses: []string{"alice@example.org"},
		NotBefore:      time.Now(),
		NotAfter:       time.Now().AddDate(1, 0, 0),
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}

	password, err := p12.NewPassword()
	if err != nil {
		log.Fatal(err)
	}
	pfx, err := p12.Encode(rand.Reader, key, cert, nil, "Alice <alice@example.org>", password, p12.Legacy)
	if err != nil {
		log.Fatal(err)
	}
	// Send pfx to the subscriber as alice.p12 and show them the password
	// on another channel.
	fmt.Println(len(pfx) > 0, len(password))
	// Output: true 29
}
