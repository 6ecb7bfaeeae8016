package main

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
)

// TestInitPKCS11 makes a CA whose keys are generated in a SoftHSM2 token,
// then issues, makes CRLs and signs the root's CRL with them.
func TestInitPKCS11(t *testing.T) {
	s := testkit.NewSoftHSM(t)
	t.Setenv(keys.PINEnv, s.PIN)
	dir := initDir(t, "--pkcs11", "pkcs11:token="+s.Token, "--pkcs11-module", s.Module, "--issuing-key", "rsa-3072")

	for _, f := range []string{"ca/root-ca.key", "ca/issuing-ca.key", "ca/passphrase"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s exists (%v); a token CA writes no key file or passphrase", f, err)
		}
	}
	body, err := os.ReadFile(filepath.Join(dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), s.PIN) {
		t.Errorf("%s contains the PIN", config.FileName)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	issURI, err := keys.ParsePKCS11URI(cfg.CA.Key)
	if err != nil || issURI.Token != s.Token || issURI.Object != "issuing-ca" || len(issURI.ID) == 0 {
		t.Errorf("ca.key = %q (%v); want the token's issuing-ca key with its id", cfg.CA.Key, err)
	}
	if rootURI, err := keys.ParsePKCS11URI(cfg.CA.RootKey); err != nil || rootURI.Object != "root-ca" {
		t.Errorf("ca.root_key = %q (%v); want the token's root-ca key", cfg.CA.RootKey, err)
	}
	if cfg.PKCS11.Module != s.Module || cfg.CA.PassphraseFile != "" {
		t.Errorf("pkcs11.module = %q, ca.passphrase_file = %q; want %q and none", cfg.PKCS11.Module, cfg.CA.PassphraseFile, s.Module)
	}

	chain := readCerts(t, filepath.Join(dir, "ca/issuing-ca.pem"))
	if kt, _ := keys.TypeOf(chain[0].PublicKey); kt != keys.RSA3072 {
		t.Errorf("issuing CA key type %s, want rsa-3072", kt)
	}
	leaf := parsePEMCert(t, mustMailca(t, "issue", "--dir", dir, "--email", "bob@example.com", "--csr", writeCSR(t, ecKey(t))))
	roots := x509.NewCertPool()
	roots.AddCert(chain[1])
	inter := x509.NewCertPool()
	inter.AddCert(chain[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		t.Errorf("issued certificate does not verify: %v", err)
	}
	mustMailca(t, "crl", "--dir", dir)
	out := mustMailca(t, "ca", "root-crl", "--dir", dir)
	if !strings.Contains(out, "CRL number 2") {
		t.Errorf("ca root-crl said %q, want CRL number 2", out)
	}
	crlDER, err := os.ReadFile(filepath.Join(dir, "ca/root-ca.crl"))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil || crl.CheckSignatureFrom(chain[1]) != nil {
		t.Errorf("root CRL does not verify under the root: %v", err)
	}

	// A second CA on the same token, using the keys already there.
	dir2 := initDir(t, "--issuing-key-uri", cfg.CA.Key, "--root-key-uri", cfg.CA.RootKey, "--pkcs11-module", s.Module)
	cfg2, err := config.Load(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if cfg2.CA.Key != cfg.CA.Key {
		t.Errorf("ca.key = %q, want the given %q", cfg2.CA.Key, cfg.CA.Key)
	}
	chain2 := readCerts(t, filepath.Join(dir2, "ca/issuing-ca.pem"))
	if !keys.SamePublicKey(chain2[0].PublicKey, chain[0].PublicKey) {
		t.Errorf("the second CA does not use the existing issuing key")
	}
	mustMailca(t, "issue", "--dir", dir2, "--email", "carol@example.com", "--csr", writeCSR(t, ecKey(t)))

	// Generating again under the same labels is refused, clearly.
	code, _, errOut := mailca(t, "init", "--dir", filepath.Join(t.TempDir(), "d3"), "--pkcs11", "pkcs11:token="+s.Token, "--pkcs11-module", s.Module)
	if code == 0 || !strings.Contains(errOut, "already holds a key labelled") {
		t.Errorf("init on a token with a root-ca key: exit %d, %q", code, errOut)
	}
}

// TestPKCS11WrongPIN checks that a wrong PIN stops issue with a message
// that says so and does not show the PIN.
func TestPKCS11WrongPIN(t *testing.T) {
	s := testkit.NewSoftHSM(t)
	t.Setenv(keys.PINEnv, s.PIN)
	dir := initDir(t, "--pkcs11", "pkcs11:token="+s.Token+"?module-path="+s.Module)
	wrong := "7" + s.PIN[1:]
	t.Setenv(keys.PINEnv, wrong)
	code, _, errOut := mailca(t, "issue", "--dir", dir, "--email", "bob@example.com", "--csr", writeCSR(t, ecKey(t)))
	if code == 0 || !strings.Contains(errOut, "refused the PIN") {
		t.Errorf("issue with a wrong PIN: exit %d, %q; want a refused PIN", code, errOut)
	}
	if strings.Contains(errOut, wrong) || strings.Contains(errOut, s.PIN) {
		t.Errorf("the error shows the PIN: %q", errOut)
	}
}

// TestPKCS11PINNotInConfig checks that a pin-value given to init is used
// but not written, and that a configuration carrying one is refused.
func TestPKCS11PINNotInConfig(t *testing.T) {
	s := testkit.NewSoftHSM(t)
	t.Setenv(keys.PINEnv, "")
	os.Unsetenv(keys.PINEnv)
	pinFile := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pinFile, []byte(s.PIN+"\n"), 0o600)
	dir := initDir(t, "--pkcs11", "pkcs11:token="+s.Token+"?module-path="+s.Module+"&pin-value="+s.PIN, "--pkcs11-pin-file", pinFile)
	body, _ := os.ReadFile(filepath.Join(dir, config.FileName))
	if strings.Contains(string(body), s.PIN) || strings.Contains(string(body), "pin-value=") {
		t.Fatalf("the PIN was written to the configuration:\n%s", body)
	}
	// The PIN file recorded in [pkcs11] pin_file is enough to issue.
	mustMailca(t, "issue", "--dir", dir, "--email", "bob@example.com", "--csr", writeCSR(t, ecKey(t)))

	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	withPIN := strings.Replace(string(body), cfg.CA.Key, cfg.CA.Key+"&pin-value="+s.PIN, 1)
	os.WriteFile(filepath.Join(dir, config.FileName), []byte(withPIN), 0o600)
	code, _, errOut := mailca(t, "issue", "--dir", dir, "--email", "bob@example.com", "--csr", writeCSR(t, ecKey(t)))
	if code == 0 || !strings.Contains(errOut, "may not carry pin-value") || strings.Contains(errOut, s.PIN) {
		t.Errorf("issue with a PIN in the configuration: exit %d, %q; want a refusal that does not show the PIN", code, errOut)
	}
}
