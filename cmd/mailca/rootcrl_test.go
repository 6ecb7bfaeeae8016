package main

import (
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/ca"
)

// TestRootCRL: init signs the root's CRL, whose URL the issuing CA
// certificate names, and 'mailca ca root-crl' signs the next one.
func TestRootCRL(t *testing.T) {
	dir := initDir(t)
	root := readCerts(t, filepath.Join(dir, "ca/root-ca.pem"))[0]
	issuing := readCerts(t, filepath.Join(dir, "ca/issuing-ca.pem"))[0]
	read := func() *x509.RevocationList {
		t.Helper()
		der, err := os.ReadFile(filepath.Join(dir, "ca/root-ca.crl"))
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(root); err != nil {
			t.Fatalf("root CRL not signed by the root: %v", err)
		}
		if err := ca.CheckCARevocationList(der); err != nil {
			t.Errorf("root CRL lint: %v", err)
		}
		return crl
	}
	first := read()
	if first.Number.Int64() != 1 || first.NextUpdate.Sub(first.ThisUpdate) != ca.RootCRLValidity {
		t.Errorf("first root CRL: number %v, valid %v", first.Number, first.NextUpdate.Sub(first.ThisUpdate))
	}
	id := hex.EncodeToString(root.SubjectKeyId[:8])
	if len(issuing.CRLDistributionPoints) != 1 || !strings.HasSuffix(issuing.CRLDistributionPoints[0], "/crl/"+id+".crl") {
		t.Errorf("issuing CA CRL DP %v does not name the root CRL %s", issuing.CRLDistributionPoints, id)
	}
	out := mustMailca(t, "ca", "root-crl", "--dir", dir)
	if second := read(); second.Number.Int64() != 2 || !strings.Contains(out, "number 2") {
		t.Errorf("second root CRL number %v; said %q", second.Number, out)
	}
	// Another key is refused.
	other := filepath.Join(dir, "ca/issuing-ca.key")
	if code, _, errOut := mailca(t, "ca", "root-crl", "--dir", dir, "--root-key", other); code != 1 || !strings.Contains(errOut, "not the key of the root") {
		t.Errorf("root-crl with the issuing key: exit %d, %q", code, errOut)
	}
}
