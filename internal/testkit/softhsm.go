package testkit

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
)

// SoftHSMModules are the places Debian, Fedora and Homebrew install the
// SoftHSM2 PKCS#11 module.
var SoftHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// SoftHSM is a freshly initialised SoftHSM2 token.
type SoftHSM struct {
	Module string // path of the PKCS#11 module
	Token  string // token label
	PIN    string // user PIN
	SOPIN  string // security officer PIN
	Conf   string // the SOFTHSM2_CONF file
}

// URI returns the PKCS#11 URI of the token, with module-path and without
// a PIN, followed by extra path attributes such as "object=issuing-ca".
func (s *SoftHSM) URI(extra ...string) string {
	u := "pkcs11:token=" + s.Token
	for _, e := range extra {
		u += ";" + e
	}
	return u + "?module-path=" + s.Module
}

// NewSoftHSM makes a throwaway SoftHSM2 configuration whose token
// directory is under tb.TempDir(), points SOFTHSM2_CONF at it for the rest
// of the test (child processes inherit it), and initialises a token with a
// random label and PINs. The test may not be parallel (tb.Setenv).
//
// Without softhsm2-util, the module, or cgo (which PKCS#11 needs) the test
// is skipped, or failed when CI=true.
//
// SoftHSM2 reads SOFTHSM2_CONF when its module is initialised, which
// crypto11 does once per process for as long as a context is open: close
// every keys.HSM of a test before the next test makes its token.
func NewSoftHSM(tb testing.TB) *SoftHSM {
	tb.Helper()
	util, err := exec.LookPath("softhsm2-util")
	module := ""
	for _, m := range SoftHSMModules {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	if err == nil && module == "" {
		err = fmt.Errorf("no libsofthsm2.so in %v", SoftHSMModules)
	}
	if err == nil && !keys.HavePKCS11 {
		err = keys.ErrNoCgo
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testkit: SoftHSM2 is required in CI (apt-get install softhsm2): %v", err)
		}
		tb.Skipf("testkit: SoftHSM2 not installed (apt-get install softhsm2): %v", err)
	}
	dir := tb.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", conf)
	s := &SoftHSM{Module: module, Token: "mailca-test-" + randHex(tb, 4), PIN: randHex(tb, 8), SOPIN: randHex(tb, 8), Conf: conf}
	cmd := exec.Command(util, "--init-token", "--free", "--label", s.Token, "--so-pin", s.SOPIN, "--pin", s.PIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("testkit: softhsm2-util --init-token: %v\n%s", err, out)
	}
	return s
}

// NewTokenHierarchy is NewHierarchy with the root and issuing CA keys,
// of type t, generated in a fresh SoftHSM2 token (see NewSoftHSM); their
// signers sign in the token. The token's PIN is put in MAILCA_PKCS11_PIN
// for the rest of the test, and its sessions close when the test ends.
func NewTokenHierarchy(tb testing.TB, t keys.Type) (*Hierarchy, *SoftHSM) {
	tb.Helper()
	s := NewSoftHSM(tb)
	tb.Setenv(keys.PINEnv, s.PIN)
	hsm := keys.NewHSM(keys.HSMConfig{Module: s.Module})
	tb.Cleanup(func() { hsm.Close() })
	gen := func(label string) keys.PKCS11URI {
		u, err := keys.ParsePKCS11URI(s.URI("object=" + label))
		if err != nil {
			tb.Fatal(err)
		}
		return *u
	}
	rootURI, issURI := gen("root-ca"), gen("issuing-ca")
	rootKey, _, err := hsm.Generate(&rootURI, t)
	if err != nil {
		tb.Fatalf("generating the root key in SoftHSM2: %v", err)
	}
	issKey, _, err := hsm.Generate(&issURI, t)
	if err != nil {
		tb.Fatalf("generating the issuing key in SoftHSM2: %v", err)
	}
	now := time.Now()
	root, err := ca.NewRoot(rootKey, ca.CAName{Organization: Organization, Country: "DE", CommonName: "Test HSM Root " + string(t)}, now)
	if err != nil {
		tb.Fatalf("NewRoot: %v", err)
	}
	issCert, err := ca.NewIssuingCA(root, rootKey, issKey.Public(), ca.CAName{Organization: Organization, Country: "DE", CommonName: "Test HSM S/MIME CA " + string(t)}, PKIBaseURL, now)
	if err != nil {
		tb.Fatalf("NewIssuingCA: %v", err)
	}
	iss, err := ca.NewIssuer(issCert, []*x509.Certificate{root}, issKey, PKIBaseURL)
	if err != nil {
		tb.Fatalf("NewIssuer: %v", err)
	}
	return &Hierarchy{Root: root, RootKey: rootKey, Issuer: iss}, s
}

func randHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}
