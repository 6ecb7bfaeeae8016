package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRevokeAndCRL revokes from the command line and writes the CRL: the
// serial is accepted as openssl prints it, a second revocation changes
// nothing, and the CRL lists the certificate with its reason.
func TestRevokeAndCRL(t *testing.T) {
	dir := initDir(t)
	leaf := parsePEMCert(t, mustMailca(t, "issue", "--dir", dir, "--email", "ann@example.com", "--csr", writeCSR(t, ecKey(t))))
	hexSerial := strings.ToUpper(leaf.SerialNumber.Text(16))
	var pairs []string
	if len(hexSerial)%2 == 1 {
		hexSerial = "0" + hexSerial
	}
	for i := 0; i < len(hexSerial); i += 2 {
		pairs = append(pairs, hexSerial[i:i+2])
	}
	colons := strings.Join(pairs, ":")

	out := mustMailca(t, "revoke", "--dir", dir, "--serial", colons, "--reason", "key-compromise")
	for _, want := range []string{"Revoked certificate " + leaf.SerialNumber.Text(16), "ann@example.com", "keyCompromise", "key is blocked"} {
		if !strings.Contains(out, want) {
			t.Errorf("revoke said %q, want it to mention %q", out, want)
		}
	}
	if out := mustMailca(t, "revoke", "--dir", dir, "--serial", leaf.SerialNumber.Text(16), "--reason", "superseded"); !strings.Contains(out, "already revoked") || !strings.Contains(out, "keyCompromise") {
		t.Errorf("second revoke said %q", out)
	}

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"forbidden reason", []string{"--serial", colons, "--reason", "certificateHold"}, 1, "unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn"},
		{"unknown serial", []string{"--serial", "abcdef0123", "--reason", "superseded"}, 1, "no issued certificate"},
		{"not a serial", []string{"--serial", "zz", "--reason", "superseded"}, 1, "invalid serial"},
		{"no reason", []string{"--serial", colons}, 2, "--reason"},
		{"no serial", []string{"--reason", "superseded"}, 2, "--serial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := mailca(t, append([]string{"revoke", "--dir", dir}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tt.code, tt.want)
			}
		})
	}

	issuing := readCerts(t, filepath.Join(dir, "ca", "issuing-ca.pem"))[0]
	crlFile := filepath.Join(t.TempDir(), "crl.der")
	code, _, errOut := mailca(t, "crl", "--dir", dir, "--out", crlFile)
	if code != 0 || !strings.Contains(errOut, "1 revoked certificates") {
		t.Fatalf("crl: exit %d, %q", code, errOut)
	}
	der, err := os.ReadFile(crlFile)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil || crl.CheckSignatureFrom(issuing) != nil {
		t.Fatalf("written CRL: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(leaf.SerialNumber) != 0 || crl.RevokedCertificateEntries[0].ReasonCode != 1 {
		t.Errorf("CRL entries %+v, want the revoked certificate for keyCompromise", crl.RevokedCertificateEntries)
	}
	// Without --out: PEM on standard output, with the next number.
	block, _ := pem.Decode([]byte(mustMailca(t, "crl", "--dir", dir)))
	if block == nil || block.Type != "X509 CRL" {
		t.Fatalf("crl without --out printed no PEM CRL")
	}
	if next, err := x509.ParseRevocationList(block.Bytes); err != nil || next.Number.Cmp(crl.Number) <= 0 {
		t.Errorf("second CRL number %v after %v (%v)", next.Number, crl.Number, err)
	}
}

// TestCRLIntervalSetting checks the crl_interval setting is read and
// bounded.
func TestCRLIntervalSetting(t *testing.T) {
	dir := initDir(t)
	cfgPath := filepath.Join(dir, "mailca.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	set := func(v string) {
		t.Helper()
		cfg := strings.Replace(string(b), `# crl_interval = "1h"`, `crl_interval = "`+v+`"`, 1)
		if cfg == string(b) {
			t.Fatal("the configuration file has no crl_interval line")
		}
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	set("6h")
	code, out, errOut := mailca(t, "crl", "--dir", dir)
	block, _ := pem.Decode([]byte(out))
	if code != 0 || block == nil {
		t.Fatalf("crl with a 6h interval: exit %d, %q", code, errOut)
	}
	crl, _ := x509.ParseRevocationList(block.Bytes)
	if d := crl.NextUpdate.Sub(crl.ThisUpdate); d.Hours() != 12 {
		t.Errorf("CRL valid for %s with a 6h interval, want 12h", d)
	}
	set("200h")
	if code, _, errOut := mailca(t, "crl", "--dir", dir); code != 1 || !strings.Contains(errOut, "crl_interval") {
		t.Errorf("crl with a 200h interval: exit %d, %q; want a refusal naming crl_interval", code, errOut)
	}
}
