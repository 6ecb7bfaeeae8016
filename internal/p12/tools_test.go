package p12_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/p12"
)

// These tests hand Encode's output to the decoders that mail clients are
// built on: OpenSSL, GnuPG's gpgsm and NSS (Thunderbird).

// tool returns the path of the program name. A missing program skips the
// test on a developer's machine but fails it in CI, where a skip would hide
// that the clients were never tried.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return path
}

// run runs a program and returns its combined output, failing the test if
// it exits with an error.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

// writeP12 encodes id with a fresh password into a file and returns the
// file's name and the password.
func writeP12(t *testing.T, id identity, f p12.Format) (name, password string) {
	t.Helper()
	password, err := p12.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	name = filepath.Join(t.TempDir(), "id.p12")
	if err := os.WriteFile(name, encode(t, id, password, f), 0o600); err != nil {
		t.Fatal(err)
	}
	return name, password
}

func TestOpenSSL(t *testing.T) {
	openssl := tool(t, "openssl")
	// openssl pkcs12 -info names each algorithm as it reads it.
	want := map[p12.Format][]string{
		p12.Legacy: {
			"MAC: sha1, Iteration 2048",
			"PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048",
			"Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048",
		},
		p12.Modern: {
			"MAC: sha256, Iteration 10000",
			"PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256",
			"Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256",
		},
	}
	for _, kt := range keyTypes {
		key, err := kt.gen()
		if err != nil {
			t.Fatal(err)
		}
		id := newIdentity(t, key)
		for _, f := range formats {
			t.Run(kt.name+"/"+f.String(), func(t *testing.T) {
				file, password := writeP12(t, id, f)

				info := run(t, exec.Command(openssl, "pkcs12", "-info", "-noout", "-passin", "pass:"+password, "-in", file))
				for _, line := range want[f] {
					if !strings.Contains(info, line) {
						t.Errorf("openssl pkcs12 -info output lacks %q:\n%s", line, info)
					}
				}

				out := run(t, exec.Command(openssl, "pkcs12", "-nodes", "-passin", "pass:"+password, "-in", file))
				// OpenSSL 3.0 prints a BMPString by its low bytes, Latin-1
				// for our name; accept UTF-8 too, for later versions.
				n := strings.Count(out, "friendlyName: "+friendlyName+"\n") +
					strings.Count(out, "friendlyName: "+latin1(friendlyName)+"\n")
				if n != 2 {
					t.Errorf("openssl pkcs12 -nodes shows friendlyName %q %d times, want 2 (key and certificate):\n%s", friendlyName, n, out)
				}
				checkPEM(t, []byte(out), id)
			})
		}
	}
}

// latin1 returns s in ISO 8859-1; s must not have runes above U+00FF.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// checkPEM checks that the PEM blocks OpenSSL extracted are id's key,
// certificate and chain, in that order of certificates.
func checkPEM(t *testing.T, out []byte, id identity) {
	t.Helper()
	var certs []*x509.Certificate
	var keys []crypto.PrivateKey
	for {
		var b *pem.Block
		b, out = pem.Decode(out)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatalf("certificate from openssl: %v", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				t.Fatalf("key from openssl: %v", err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) != 1 {
		t.Fatalf("openssl extracted %d keys, want 1", len(keys))
	}
	if k, ok := keys[0].(interface{ Equal(crypto.PrivateKey) bool }); !ok || !k.Equal(id.key) {
		t.Errorf("openssl extracted key %T, want the encoded %T", keys[0], id.key)
	}
	want := append([]*x509.Certificate{id.cert}, id.chain...)
	if len(certs) != len(want) {
		t.Fatalf("openssl extracted %d certificates, want %d", len(certs), len(want))
	}
	for i := range want {
		if !certs[i].Equal(want[i]) {
			t.Errorf("openssl certificate %d = %q, want %q", i, certs[i].Subject, want[i].Subject)
		}
	}
}

// TestGpgsm imports a Legacy file with an RSA key, the case that gpgsm 2.2
// (Debian 12) supports: it crashes on EC keys in any PKCS#12 file and does
// not read PBES2 with an HMAC-SHA-256 PRF, OpenSSL's files included.
func TestGpgsm(t *testing.T) {
	gpgsm := tool(t, "gpgsm")
	gpgconf := tool(t, "gpgconf")
	key, err := keyTypes[1].gen()
	if err != nil {
		t.Fatal(err)
	}
	id := newIdentity(t, key)
	file, password := writeP12(t, id, p12.Legacy)

	// Not t.TempDir: the agent's socket path must stay short.
	home, err := os.MkdirTemp("", "g")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GNUPGHOME="+home)
	t.Cleanup(func() {
		kill := exec.Command(gpgconf, "--kill", "all")
		kill.Env = env
		if out, err := kill.CombinedOutput(); err != nil {
			t.Errorf("gpgconf --kill all: %v\n%s", err, out)
		}
		os.RemoveAll(home)
	})
	if err := os.WriteFile(filepath.Join(home, "gpg-agent.conf"), []byte("allow-loopback-pinentry\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The exit status of --import says nothing about the secret key, so
	// read the summary instead.
	cmd := exec.Command(gpgsm, "--batch", "--disable-dirmngr", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", file)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(password)
	out, _ := cmd.CombinedOutput()
	if !bytes.Contains(out, []byte("secret keys imported: 1")) {
		t.Errorf("gpgsm --import did not import the secret key:\n%s", out)
	}
}

func TestNSS(t *testing.T) {
	certutil := tool(t, "certutil")
	pk12util := tool(t, "pk12util")
	for _, kt := range keyTypes {
		key, err := kt.gen()
		if err != nil {
			t.Fatal(err)
		}
		id := newIdentity(t, key)
		for _, f := range formats {
			t.Run(kt.name+"/"+f.String(), func(t *testing.T) {
				file, password := writeP12(t, id, f)
				db := "sql:" + t.TempDir()
				run(t, exec.Command(certutil, "-N", "-d", db, "--empty-password"))
				run(t, exec.Command(pk12util, "-i", file, "-d", db, "-W", password, "-K", ""))

				// NSS names the identity after the friendlyName; "u,u,u"
				// means it found the private key for the certificate.
				list := run(t, exec.Command(certutil, "-L", "-d", db))
				if !containsLine(list, friendlyName, "u,u,u") {
					t.Errorf("certutil -L does not list %q with its key:\n%s", friendlyName, list)
				}
				for _, c := range id.chain {
					if !strings.Contains(list, c.Subject.CommonName) {
						t.Errorf("certutil -L does not list chain certificate %q:\n%s", c.Subject.CommonName, list)
					}
				}
			})
		}
	}
}

// containsLine reports whether some line of s contains all of parts.
func containsLine(s string, parts ...string) bool {
	for line := range strings.Lines(s) {
		n := 0
		for _, p := range parts {
			if strings.Contains(line, p) {
				n++
			}
		}
		if n == len(parts) {
			return true
		}
	}
	return false
}
