package clients

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// GoVerify verifies leaf with crypto/x509 against id.Root alone, id.Chain as
// intermediates, for email protection, and requires leaf's rfc822Name
// subject alternative names to be exactly id.Email. It fails tb on any
// error.
func GoVerify(tb testing.TB, leaf *x509.Certificate, id Identity) {
	tb.Helper()
	if err := CheckGoVerify(leaf, id); err != nil {
		tb.Fatal(err)
	}
}

// CheckGoVerify is GoVerify returning an error instead: the
// x509.Verify error, or one saying how the email addresses differ.
func CheckGoVerify(leaf *x509.Certificate, id Identity) error {
	if leaf == nil || id.Root == nil {
		return errors.New("clients: GoVerify needs a leaf and a root")
	}
	roots := x509.NewCertPool()
	roots.AddCert(id.Root)
	inter := x509.NewCertPool()
	for _, c := range id.Chain {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("clients: verify %q: %w", leaf.Subject, err)
	}
	if want := []string{id.Email}; !slices.Equal(leaf.EmailAddresses, want) {
		return fmt.Errorf("clients: leaf email addresses = %q, want %q", leaf.EmailAddresses, want)
	}
	return nil
}
