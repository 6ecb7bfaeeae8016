package clients

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

// GpgsmSignVerify imports id into a fresh gpgsm home that trusts only
// id.Root, checks that gpgsm validates the certificate, makes a detached
// signature with gpgsm and verifies it. It fails tb on any error.
//
// gpgsm 2.2 imports only RSA keys from PKCS#12 files: on any other key it
// crashes (SIGSEGV in the import code, whoever made the file). For such an
// identity under gpgsm 2.2 the helper checks gpgsm as the relying party
// only: openssl signs, gpgsm validates the certificate and verifies. It says
// so in the test log; the PKCS#12 is then not exercised by gpgsm.
//
// gpgsm 2.2 also reads only 3DES or RC2 PKCS#12 files, not AES (PBES2), and
// only passwords of at most 31 bytes; it reports either as a bad
// passphrase, and this helper fails.
func GpgsmSignVerify(tb testing.TB, id Identity) {
	tb.Helper()
	requireTools(tb, "gpgsm", "gpgconf", "gpg-agent")
	note, err := gpgsmSignVerify(tb.Context(), tb.TempDir(), id)
	if note != "" {
		tb.Log(note)
	}
	if err != nil {
		failOrSkip(tb, err)
	}
}

// CheckGpgsmSignVerify is GpgsmSignVerify returning an error instead, a
// *CommandError when gpgsm fails or does not report a good, fully trusted
// signature. It writes its files into a new directory under dir; the gpgsm
// home lives under os.TempDir, because gpg-agent's socket path is limited
// in length, and it is removed, its agent killed, before the function
// returns.
func CheckGpgsmSignVerify(ctx context.Context, dir string, id Identity) error {
	_, err := gpgsmSignVerify(ctx, dir, id)
	return err
}

func gpgsmSignVerify(ctx context.Context, dir string, id Identity) (note string, err error) {
	f, err := writeFiles(dir, "gpgsm", id)
	if err != nil {
		return "", err
	}
	_, leaf, _, err := pkcs12.DecodeChain(id.P12, id.Password)
	if err != nil {
		return "", fmt.Errorf("clients: decode PKCS#12 for its key type: %w", err)
	}
	version, err := gpgsmVersion(ctx)
	if err != nil {
		return "", err
	}
	_, isRSA := leaf.PublicKey.(*rsa.PublicKey)
	// ECC import arrived with gpgsm 2.3 (import.c store_key_from_p12).
	importKey := isRSA || version[0] > 2 || version[0] == 2 && version[1] >= 3
	if !importKey {
		note = fmt.Sprintf("clients: gpgsm %d.%d imports only RSA keys from PKCS#12, not this %s key: "+
			"checked gpgsm as the relying party only, over a signature made by openssl",
			version[0], version[1], leaf.PublicKeyAlgorithm)
	}

	home, err := newGnupgHome(id.Root)
	if err != nil {
		return note, err
	}
	env := []string{"GNUPGHOME=" + home}
	defer func() {
		// The context may be done; the agent must die regardless.
		kill := invocation{env: env, args: []string{"gpgconf", "--kill", "all"}}
		if _, kerr := run(context.WithoutCancel(ctx), kill); kerr != nil && err == nil {
			err = kerr
		}
		if rerr := os.RemoveAll(home); rerr != nil && err == nil {
			err = fmt.Errorf("clients: %w", rerr)
		}
	}()
	pass := []byte(f.pass)

	// 1. The trust anchor and issuing CAs, as a relying party gets them.
	certs := []string{"gpgsm", "--batch", "--import", f.root}
	if f.chain != "" {
		certs = append(certs, f.chain)
	}
	if _, err := run(ctx, invocation{env: env, args: certs}); err != nil {
		return note, err
	}

	// 2. The subscriber's key and certificate. gpgsm's exit status after
	// an import is not to be relied on alone: the summary must count the
	// key too.
	if importKey {
		p12 := invocation{env: env, stdin: pass, args: []string{"gpgsm", "--batch", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "--import", f.p12}}
		out, err := run(ctx, p12)
		if err != nil {
			return note, err
		}
		if !regexp.MustCompile(`(?m)secret keys imported: +1$`).MatchString(out) {
			return note, rejected(p12, out, "want \"secret keys imported: 1\"")
		}
	} else {
		leafPEM := f.path("leaf.pem")
		if err := os.WriteFile(leafPEM, pemCerts(leaf), 0o600); err != nil {
			return note, fmt.Errorf("clients: %w", err)
		}
		if _, err := run(ctx, invocation{env: env, args: []string{"gpgsm", "--batch", "--import", leafPEM}}); err != nil {
			return note, err
		}
	}

	// 3. gpgsm must find the certificate valid, and with its secret key
	// when it imported one.
	if err := gpgsmValid(ctx, env, id.Email, importKey); err != nil {
		return note, err
	}

	// 4. Sign. gpgsm objects to ECDSA over a digest shorter than the
	// curve ("a 256 bit hash is not valid for a 384 bit ECC key"), so
	// the digest follows the key.
	sig := f.path("message.p7s")
	digest := digestFor(leaf)
	if importKey {
		sign := []string{"gpgsm", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase-fd", "0", "-u", id.Email}
		if digest != "" {
			sign = append(sign, "--digest-algo", digest)
		}
		sign = append(sign, "--detach-sign", "-o", sig, f.message)
		if _, err := run(ctx, invocation{env: env, stdin: pass, args: sign}); err != nil {
			return note, err
		}
	} else if err := opensslDetachSign(ctx, f, digest, sig); err != nil {
		return note, err
	}

	// 5. Verify. GOODSIG alone only says the mathematics held: gpgsm
	// prints it for a chain it does not trust too, so the trust line and
	// the exit status count as well.
	verify := invocation{env: env, args: []string{"gpgsm", "--batch", "--status-fd", "1", "--verify", sig, f.message}}
	out, err := run(ctx, verify)
	if err != nil {
		return note, err
	}
	status := gnupgStatus(out)
	for _, bad := range []string{"BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "TRUST_UNDEFINED", "TRUST_NEVER"} {
		if status[bad] {
			return note, rejected(verify, out, "gpgsm reported %s", bad)
		}
	}
	for _, want := range []string{"GOODSIG", "VALIDSIG"} {
		if !status[want] {
			return note, rejected(verify, out, "want [GNUPG:] %s", want)
		}
	}
	if !status["TRUST_FULLY"] && !status["TRUST_ULTIMATE"] {
		return note, rejected(verify, out, "want [GNUPG:] TRUST_FULLY")
	}
	return note, nil
}

// newGnupgHome makes a short-named gpgsm home trusting root for S/MIME.
// The trust list is written before any agent starts, because gpg-agent
// reads it once and caches it.
func newGnupgHome(root *x509.Certificate) (string, error) {
	home, err := os.MkdirTemp("", "g")
	if err != nil {
		return "", fmt.Errorf("clients: %w", err)
	}
	fpr := sha1.Sum(root.Raw)
	conf := map[string]string{
		// No network: no CRLs, and no dirmngr to fetch missing issuers,
		// so a chain must be complete as given.
		"gpgsm.conf":     "disable-crl-checks\ndisable-dirmngr\n",
		"gpg-agent.conf": "allow-loopback-pinentry\n",
		"trustlist.txt":  strings.ToUpper(hex.EncodeToString(fpr[:])) + " S relax\n",
	}
	for name, text := range conf {
		if err := os.WriteFile(filepath.Join(home, name), []byte(text), 0o600); err != nil {
			os.RemoveAll(home)
			return "", fmt.Errorf("clients: %w", err)
		}
	}
	return home, nil
}

// gpgsmVersion returns gpgsm's major and minor version.
func gpgsmVersion(ctx context.Context) ([2]int, error) {
	inv := invocation{args: []string{"gpgsm", "--version"}}
	out, err := run(ctx, inv)
	if err != nil {
		return [2]int{}, err
	}
	m := regexp.MustCompile(`^gpgsm \(GnuPG\) (\d+)\.(\d+)`).FindStringSubmatch(out)
	if m == nil {
		return [2]int{}, rejected(inv, out, "no version on the first line")
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return [2]int{major, minor}, nil
}

// gpgsmValid lists email's certificates with validation and requires one
// that gpgsm holds valid (validity f or u) and, when withKey is set, whose
// secret key it holds (record crs, listed by --list-secret-keys only).
func gpgsmValid(ctx context.Context, env []string, email string, withKey bool) error {
	cmd, want := "--list-keys", "crt"
	if withKey {
		cmd, want = "--list-secret-keys", "crs"
	}
	list := invocation{env: env, args: []string{"gpgsm", "--batch", "--with-colons", "--with-validation", cmd, email}}
	out, err := run(ctx, list)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		field := strings.Split(line, ":")
		if len(field) > 1 && field[0] == want && (field[1] == "f" || field[1] == "u") {
			return nil
		}
	}
	// The human listing says why, as in "[certificate is bad: Not trusted]".
	human := invocation{env: env, args: []string{"gpgsm", "--batch", "--with-validation", "--list-keys", email}}
	hout, _ := run(ctx, human)
	return rejected(list, out+hout, "want a %s record with validity f or u", want)
}

// gnupgStatus returns the keywords of the [GNUPG:] status lines in out.
func gnupgStatus(out string) map[string]bool {
	status := make(map[string]bool)
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "[GNUPG:] ")
		if !ok {
			continue
		}
		if kw, _, _ := strings.Cut(rest, " "); kw != "" {
			status[kw] = true
		}
	}
	return status
}

// digestFor names the digest a signature with cert's key should use when
// the client's default (SHA-256) is too short for it; "" otherwise.
func digestFor(cert *x509.Certificate) string {
	k, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return ""
	}
	switch k.Curve {
	case elliptic.P384():
		return "SHA384"
	case elliptic.P521():
		return "SHA512"
	}
	return ""
}

// opensslDetachSign writes a DER detached signature of the message to sig.
func opensslDetachSign(ctx context.Context, f files, digest, sig string) error {
	cert, key, err := opensslUnpack(ctx, f)
	if err != nil {
		return err
	}
	sign := []string{"openssl", "cms", "-sign", "-binary", "-in", f.message, "-signer", cert, "-inkey", key, "-outform", "DER", "-out", sig}
	if digest != "" {
		sign = append(sign, "-md", strings.ToLower(digest))
	}
	if f.chain != "" {
		sign = append(sign, "-certfile", f.chain)
	}
	_, err = run(ctx, invocation{args: sign})
	return err
}
