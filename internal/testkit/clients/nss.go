package clients

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// NSSSignVerify imports id into a fresh NSS database that trusts only
// id.Root, requires certutil to find the certificate valid for signing (S)
// and receiving (R) email, signs a message with cmsutil and requires cmsutil
// to decode it with a good signature. It fails tb on any error.
func NSSSignVerify(tb testing.TB, id Identity) {
	tb.Helper()
	requireTools(tb, "certutil", "pk12util", "cmsutil")
	if err := CheckNSSSignVerify(tb.Context(), tb.TempDir(), id); err != nil {
		failOrSkip(tb, err)
	}
}

// CheckNSSSignVerify is NSSSignVerify returning an error instead, a
// *CommandError when an NSS tool fails or cmsutil reports any signer
// status but GoodSignature. It writes its files, the database included,
// into a new directory under dir.
func CheckNSSSignVerify(ctx context.Context, dir string, id Identity) error {
	f, err := writeFiles(dir, "nss", id)
	if err != nil {
		return err
	}
	dbDir := f.path("nssdb")
	if err := os.Mkdir(dbDir, 0o700); err != nil {
		return fmt.Errorf("clients: %w", err)
	}
	db := "sql:" + dbDir

	// 1. An empty database, the anchor trusted for everything as a user
	// would mark it, the issuing CAs with no trust of their own.
	steps := [][]string{
		{"certutil", "-N", "-d", db, "--empty-password"},
		{"certutil", "-A", "-d", db, "-n", "mailca-root", "-t", "C,C,C", "-i", f.root},
	}
	for i, ca := range id.Chain {
		path := f.path(fmt.Sprintf("ca%d.pem", i))
		if err := os.WriteFile(path, pemCerts(ca), 0o600); err != nil {
			return fmt.Errorf("clients: %w", err)
		}
		steps = append(steps, []string{"certutil", "-A", "-d", db, "-n", fmt.Sprintf("mailca-ca-%d", i), "-t", ",,", "-i", path})
	}
	// 2. The subscriber's PKCS#12; -K "" is the empty database password.
	steps = append(steps, []string{"pk12util", "-i", f.p12, "-d", db, "-w", f.passFile, "-K", ""})
	for _, args := range steps {
		if _, err := run(ctx, invocation{args: args}); err != nil {
			return err
		}
	}

	// 3. The nickname pk12util chose: the certificate with user trust,
	// which NSS gives a certificate whose key it holds.
	nick, err := nssUserNickname(ctx, db)
	if err != nil {
		return err
	}

	// 4. Valid as email signer and as email recipient.
	for _, usage := range []string{"S", "R"} {
		if _, err := run(ctx, invocation{args: []string{"certutil", "-V", "-d", db, "-n", nick, "-u", usage}}); err != nil {
			return err
		}
	}

	// 5. Sign, then decode. With -h, cmsutil writes its verdict as header
	// lines before the content and exits 0 even on a bad signature, so
	// only the signer status counts.
	signed, decoded := f.path("signed.p7m"), f.path("decoded.txt")
	sign := invocation{args: []string{"cmsutil", "-S", "-d", db, "-N", nick, "-G", "-P", "-i", f.message, "-o", signed}}
	if _, err := run(ctx, sign); err != nil {
		return err
	}
	decode := invocation{args: []string{"cmsutil", "-D", "-d", db, "-h", "1", "-i", signed, "-o", decoded}}
	out, err := run(ctx, decode)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(decoded)
	if err != nil {
		return fmt.Errorf("clients: %w", err)
	}
	out += string(b)
	headers, ok := bytes.CutSuffix(b, message)
	if !ok {
		return rejected(decode, out, "decoded content does not end with the signed message")
	}
	statuses := regexp.MustCompile(`signer\d+\.status=(\w+)`).FindAllSubmatch(headers, -1)
	if len(statuses) == 0 {
		return rejected(decode, out, "want signer0.status=GoodSignature")
	}
	for _, s := range statuses {
		if string(s[1]) != "GoodSignature" {
			return rejected(decode, out, "signer status %s, want GoodSignature", s[1])
		}
	}
	return nil
}

// nssUserNickname returns the nickname of the one certificate in db with
// user trust ("u,u,u"), whose key the database holds.
func nssUserNickname(ctx context.Context, db string) (string, error) {
	list := invocation{args: []string{"certutil", "-L", "-d", db}}
	out, err := run(ctx, list)
	if err != nil {
		return "", err
	}
	// Lines read "<nickname padded with spaces> <trust>"; a nickname may
	// hold spaces, trust never does.
	trust := regexp.MustCompile(`^(.*\S)\s+([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*)$`)
	var nicks []string
	for _, line := range strings.Split(out, "\n") {
		m := trust.FindStringSubmatch(strings.TrimRight(line, " \t\r"))
		if m != nil && strings.Contains(m[2], "u") {
			nicks = append(nicks, m[1])
		}
	}
	if len(nicks) != 1 {
		return "", rejected(list, out, "want one certificate with user trust, found %q", nicks)
	}
	return nicks[0], nil
}
