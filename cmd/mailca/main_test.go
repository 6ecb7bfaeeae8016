package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit/clients"
)

// mailca runs the command in-process and returns its exit status and output.
func mailca(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func mustMailca(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := mailca(t, args...)
	if code != 0 {
		t.Fatalf("mailca %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// initDir creates a data directory whose PKI URL is a public name, so that
// no lint warning is waived.
func initDir(t *testing.T, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	mustMailca(t, append([]string{"init", "--dir", dir, "--org", "Example Org", "--country", "DE", "--pki-url", "http://pki.example.com"}, extra...)...)
	return dir
}

func readCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := datadir.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func parsePEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatalf("no PEM certificate in output %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hashDir(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), "mailca.db") {
			b, _ := os.ReadFile(p)
			out[p] = sha256.Sum256(b)
		}
		return nil
	})
	return out
}

func TestInitIsIdempotent(t *testing.T) {
	dir := initDir(t)
	before := hashDir(t, dir)
	out := mustMailca(t, "init", "--dir", dir, "--org", "Other Org")
	if !strings.Contains(out, "already initialised") {
		t.Errorf("second init said %q", out)
	}
	after := hashDir(t, dir)
	if len(before) < 5 || len(before) != len(after) {
		t.Fatalf("files before %d, after %d", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed", p)
		}
	}
	for _, f := range []string{"ca/root-ca.key", "ca/issuing-ca.key", "ca/passphrase", "mailca.toml"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	for _, f := range []string{"ca/root-ca.key", "ca/issuing-ca.key"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.HasPrefix(b, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
			t.Errorf("%s is not an encrypted PKCS#8 key", f)
		}
	}
}

func TestInitRefusesHalfDoneDirectory(t *testing.T) {
	dir := initDir(t)
	os.Remove(filepath.Join(dir, "mailca.toml"))
	code, _, errOut := mailca(t, "init", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "stopped part-way") {
		t.Errorf("init on a half-done directory: exit %d, %q", code, errOut)
	}
}

func TestInitKeyTypesAndChain(t *testing.T) {
	for _, kt := range []struct{ root, issuing string }{{"rsa-4096", "rsa-3072"}, {"ecdsa-p384", "ecdsa-p384"}, {"rsa-2048", "ecdsa-p256"}} {
		t.Run(kt.root+"/"+kt.issuing, func(t *testing.T) {
			dir := initDir(t, "--root-key", kt.root, "--issuing-key", kt.issuing)
			out := mustMailca(t, "ca", "chain", "--dir", dir)
			chain, err := datadir.ParseCertificates([]byte(out))
			if err != nil || len(chain) != 2 {
				t.Fatalf("ca chain printed %d certificates, %v", len(chain), err)
			}
			if err := chain[0].CheckSignatureFrom(chain[1]); err != nil {
				t.Errorf("issuing CA not signed by root: %v", err)
			}
			leaf := parsePEMCert(t, mustMailca(t, "issue", "--dir", dir, "--email", "bob@example.com", "--csr", writeCSR(t, ecKey(t))))
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(chain[1]), Intermediates: pool(chain[0]), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
				t.Errorf("leaf does not verify: %v", err)
			}
		})
	}
	if code, _, _ := mailca(t, "init", "--dir", t.TempDir(), "--issuing-key", "dsa-1024"); code == 0 {
		t.Errorf("init accepted an unknown key type")
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeCSR writes a CSR for key whose subject and SAN claim a mailbox the
// caller did not validate: mailca must ignore both.
func writeCSR(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "ceo@example.com", Organization: []string{"Evil"}},
		EmailAddresses: []string{"ceo@example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "req.csr")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600)
	return p
}

// TestIssueRealClients issues PKCS#12 files and CSR-based certificates and
// has OpenSSL, gpgsm, NSS and Go accept them.
func TestIssueRealClients(t *testing.T) {
	for _, caKey := range []string{"ecdsa-p256", "rsa-3072"} {
		t.Run(caKey, func(t *testing.T) {
			dir := initDir(t, "--issuing-key", caKey)
			root := readCerts(t, filepath.Join(dir, "ca/root-ca.pem"))[0]
			chain := readCerts(t, filepath.Join(dir, "ca/issuing-ca.pem"))[:1]
			for _, tc := range []struct{ profile, format, keyType string }{
				{"mailbox-strict", "legacy", "rsa-2048"},
				{"sponsor-multipurpose", "legacy", "rsa-3072"},
				{"organization-strict", "modern", "ecdsa-p256"},
			} {
				t.Run(tc.profile+"/"+tc.format+"/"+tc.keyType, func(t *testing.T) {
					email := "alice." + tc.format + "@example.com"
					p12Path := filepath.Join(t.TempDir(), "alice.p12")
					pwPath := filepath.Join(t.TempDir(), "alice.pw")
					args := []string{"issue", "--dir", dir, "--email", email, "--profile", tc.profile, "--p12", p12Path, "--p12-format", tc.format, "--key-type", tc.keyType, "--password-file", pwPath}
					if strings.HasPrefix(tc.profile, "sponsor") {
						args = append(args, "--given-name", "Alice", "--surname", "Liddell")
					}
					code, out, errOut := mailca(t, args...)
					if code != 0 {
						t.Fatalf("issue: exit %d: %s", code, errOut)
					}
					if errOut != "" {
						t.Errorf("issue wrote to stderr with --password-file: %q", errOut)
					}
					leaf := parsePEMCert(t, out)
					data, _ := os.ReadFile(p12Path)
					pw, _ := os.ReadFile(pwPath)
					id := clients.Identity{Email: email, P12: data, Password: strings.TrimSpace(string(pw)), Root: root, Chain: chain}
					clients.GoVerify(t, leaf, id)
					clients.OpenSSLSignVerify(t, id)
					clients.OpenSSLEncryptDecrypt(t, id)
					clients.NSSSignVerify(t, id)
					// gpgsm 2.2 reads neither AES PKCS#12 nor EC keys in one.
					if tc.format == "legacy" && strings.HasPrefix(tc.keyType, "rsa") {
						clients.GpgsmSignVerify(t, id)
					}
				})
			}
			t.Run("csr", func(t *testing.T) {
				openssl := clients.RequireTool(t, "openssl")
				tmp := t.TempDir()
				keyPath, csrPath := filepath.Join(tmp, "k.pem"), filepath.Join(tmp, "r.csr")
				cmd := exec.Command(openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
					"-keyout", keyPath, "-out", csrPath, "-subj", "/CN=mallory@evil.example")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("openssl req: %v\n%s", err, out)
				}
				out := mustMailca(t, "issue", "--dir", dir, "--email", "carol@example.com", "--csr", csrPath)
				leaf := parsePEMCert(t, out)
				if strings.Contains(string(leaf.RawSubject), "mallory") || len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "carol@example.com" {
					t.Errorf("certificate names %q / %v; want only carol@example.com", leaf.Subject, leaf.EmailAddresses)
				}
				certPath := filepath.Join(tmp, "c.pem")
				os.WriteFile(certPath, []byte(out), 0o600)
				chainPath := filepath.Join(dir, "ca/issuing-ca.pem")
				msg := filepath.Join(tmp, "m.txt")
				os.WriteFile(msg, []byte("hello\n"), 0o600)
				signed := filepath.Join(tmp, "s.eml")
				for _, args := range [][]string{
					{"cms", "-sign", "-in", msg, "-signer", certPath, "-inkey", keyPath, "-certfile", chainPath, "-out", signed},
					{"cms", "-verify", "-in", signed, "-CAfile", filepath.Join(dir, "ca/root-ca.pem"), "-purpose", "smimesign", "-out", os.DevNull},
				} {
					if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
						t.Fatalf("openssl %s: %v\n%s", args[1], err, out)
					}
				}
			})
		})
	}
}

func TestIssueImportedCA(t *testing.T) {
	// An organisation's own root signs an issuing CA; mailca imports it.
	src := initDir(t)
	t.Setenv("MAILCA_KEY_PASSPHRASE", "correct horse battery staple")
	passFile := filepath.Join(src, "ca/passphrase")
	pass, _ := os.ReadFile(passFile)
	keyPath := filepath.Join(t.TempDir(), "issuing.key")
	cmd := exec.Command(clients.RequireTool(t, "openssl"), "pkey", "-in", filepath.Join(src, "ca/issuing-ca.key"), "-passin", "pass:"+strings.TrimSpace(string(pass)), "-out", keyPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "imported")
	out := mustMailca(t, "init", "--dir", dir, "--org", "Example Org", "--pki-url", "http://pki.example.com",
		"--import-chain", filepath.Join(src, "ca/issuing-ca.pem"), "--import-key", keyPath)
	if !strings.Contains(out, "issuing CA: Example Org S/MIME CA") {
		t.Errorf("init output %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca/root-ca.key")); err == nil {
		t.Errorf("an import wrote a root key")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ca/issuing-ca.key"))
	if !bytes.HasPrefix(b, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
		t.Errorf("the imported key was not stored encrypted")
	}
	leaf := parsePEMCert(t, mustMailca(t, "issue", "--dir", dir, "--email", "dave@example.com", "--csr", writeCSR(t, ecKey(t))))
	roots := readCerts(t, filepath.Join(src, "ca/root-ca.pem"))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(roots...), Intermediates: pool(readCerts(t, filepath.Join(dir, "ca/issuing-ca.pem"))...), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		t.Errorf("leaf under imported CA does not verify: %v", err)
	}
	// A key that does not match the chain is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	der, _ := x509.MarshalPKCS8PrivateKey(ecKey(t))
	os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	code, _, errOut := mailca(t, "init", "--dir", filepath.Join(t.TempDir(), "x"), "--import-chain", filepath.Join(src, "ca/issuing-ca.pem"), "--import-key", other)
	if code != 1 || !strings.Contains(errOut, "does not match") {
		t.Errorf("mismatched import: exit %d, %q", code, errOut)
	}
}

// TestIssueBadInput feeds the issue command what it must refuse, and checks
// that nothing was issued.
func TestIssueBadInput(t *testing.T) {
	dir := initDir(t)
	good := writeCSR(t, ecKey(t))
	mustMailca(t, "issue", "--dir", dir, "--email", "first@example.com", "--csr", good)

	garbage := filepath.Join(t.TempDir(), "garbage.csr")
	os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), 0o600)
	badSig := filepath.Join(t.TempDir(), "badsig.csr")
	b, _ := os.ReadFile(writeCSR(t, ecKey(t)))
	block, _ := pem.Decode(b)
	block.Bytes[len(block.Bytes)-3] ^= 0xff // inside the signature value
	os.WriteFile(badSig, pem.EncodeToMemory(block), 0o600)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakCSR := writeCSR(t, weak)
	exists := filepath.Join(t.TempDir(), "exists.p12")
	os.WriteFile(exists, []byte("keep me"), 0o600)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"malformed CSR", []string{"--email", "a@example.com", "--csr", garbage}, 1, "invalid certificate signing request"},
		{"bad signature", []string{"--email", "a@example.com", "--csr", badSig}, 1, "signature does not verify"},
		{"weak key", []string{"--email", "a@example.com", "--csr", weakCSR}, 1, "at least 2048"},
		{"reused key", []string{"--email", "second@example.com", "--csr", good}, 1, "key already used"},
		{"header injection", []string{"--email", "a@example.com\r\nBcc: x@example.com", "--csr", writeCSR(t, ecKey(t))}, 1, "mailbox"},
		{"display name", []string{"--email", "Alice <a@example.com>", "--csr", writeCSR(t, ecKey(t))}, 1, "mailbox"},
		{"unknown profile", []string{"--email", "a@example.com", "--profile", "ev", "--csr", writeCSR(t, ecKey(t))}, 1, "unknown certificate profile"},
		{"names on mailbox profile", []string{"--email", "a@example.com", "--given-name", "A", "--csr", writeCSR(t, ecKey(t))}, 1, "sponsor-validated"},
		{"validity too long", []string{"--email", "a@example.com", "--validity-days", "900", "--csr", writeCSR(t, ecKey(t))}, 1, "825 days"},
		{"no key source", []string{"--email", "a@example.com"}, 2, "exactly one of"},
		{"no email", []string{"--csr", good}, 2, "--email is required"},
		{"p12 exists", []string{"--email", "a@example.com", "--p12", exists}, 1, "does not overwrite"},
		{"bad p12 format", []string{"--email", "a@example.com", "--p12", filepath.Join(t.TempDir(), "x.p12"), "--p12-format", "rc2"}, 1, "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := mailca(t, append([]string{"issue", "--dir", dir}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tt.code, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q on standard output", out)
			}
			if strings.ContainsAny(errOut[:max(0, len(errOut)-1)], "\r") {
				t.Errorf("stderr echoes a carriage return: %q", errOut)
			}
		})
	}
	if b, _ := os.ReadFile(exists); string(b) != "keep me" {
		t.Errorf("an existing file was overwritten")
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	counts, _ := db.CountCertificates(context.Background())
	if counts["issued"] != 1 || counts["reserved"] != 0 {
		t.Errorf("certificates = %v; want exactly the first one issued", counts)
	}
	// The one issuance, and only it, is in the audit log.
	if n := strings.Count(mustMailca(t, "audit", "export", "--dir", dir), "certificate.issue"); n != 1 {
		t.Errorf("%d certificate.issue audit events, want 1", n)
	}
}

func TestHelp(t *testing.T) {
	out := mustMailca(t, "--help")
	for _, c := range []string{"init", "issue", "ca"} {
		if !strings.Contains(out, "  "+c+" ") {
			t.Errorf("--help does not list %s", c)
		}
	}
	for _, c := range []string{"init", "issue", "ca"} {
		code, _, errOut := mailca(t, c, "--help")
		if code != 0 || !strings.Contains(errOut, "Usage: mailca "+c) {
			t.Errorf("mailca %s --help: exit %d, %q", c, code, errOut)
		}
	}
	if code, _, _ := mailca(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
