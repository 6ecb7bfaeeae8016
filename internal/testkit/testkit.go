// Package testkit builds the throwaway CAs and databases that tests run against.
package testkit

import (
	"context"
	"crypto"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// PKIBaseURL is the base of the CRL, OCSP and caIssuers URLs in test certificates.
const PKIBaseURL = "http://pki.example.com"

// Organization is the organisation name of test CAs and certificates.
const Organization = "Example Test Org"

// Hierarchy is a root CA and an S/MIME issuing CA beneath it.
type Hierarchy struct {
	Root    *x509.Certificate
	RootKey crypto.Signer
	Issuer  *ca.Issuer
}

// NewHierarchy returns a fresh root and issuing CA, both with keys of type t.
func NewHierarchy(tb testing.TB, t keys.Type) *Hierarchy {
	tb.Helper()
	now := time.Now()
	rootKey := keys.MustGenerate(t)
	root, err := ca.NewRoot(rootKey, ca.CAName{Organization: Organization, Country: "DE", CommonName: "Test Root " + string(t)}, now)
	if err != nil {
		tb.Fatalf("NewRoot: %v", err)
	}
	issKey := keys.MustGenerate(t)
	issCert, err := ca.NewIssuingCA(root, rootKey, issKey.Public(), ca.CAName{Organization: Organization, Country: "DE", CommonName: "Test S/MIME CA " + string(t)}, PKIBaseURL, now)
	if err != nil {
		tb.Fatalf("NewIssuingCA: %v", err)
	}
	iss, err := ca.NewIssuer(issCert, []*x509.Certificate{root}, issKey, PKIBaseURL)
	if err != nil {
		tb.Fatalf("NewIssuer: %v", err)
	}
	return &Hierarchy{Root: root, RootKey: rootKey, Issuer: iss}
}

// MustOpenDB opens a new SQLite database in a temporary directory and
// closes it when the test ends.
func MustOpenDB(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "mailca.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// NewEngine returns an issuing engine for h backed by db.
func NewEngine(tb testing.TB, h *Hierarchy, db ca.Store) *ca.Engine {
	tb.Helper()
	e, err := ca.New(ca.Config{Issuer: h.Issuer, Store: db, Organization: Organization, Country: "DE"})
	if err != nil {
		tb.Fatalf("ca.New: %v", err)
	}
	return e
}
