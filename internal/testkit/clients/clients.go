// Package clients drives real S/MIME clients (OpenSSL, gpgsm, NSS) from tests.
//
// Every client has two entry points: a test helper (OpenSSLSignVerify,
// GpgsmSignVerify, ...) that skips or fails the test, and a Check function
// (CheckOpenSSLSignVerify, ...) that returns an error instead, so that a
// test can prove a helper rejects what it should.
package clients

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Identity is one subscriber's credentials as a mail client receives them.
type Identity struct {
	Email    string              // the mailbox in the certificate
	P12      []byte              // PKCS#12 holding key, certificate and chain
	Password string              // the PKCS#12 password
	Root     *x509.Certificate   // trust anchor the relying party trusts
	Chain    []*x509.Certificate // issuing CA(s), leaf-first order excluding the leaf
}

// CommandTimeout bounds every client command.
const CommandTimeout = 60 * time.Second

// message is what the helpers sign and encrypt: a MIME entity with CRLF line
// ends, so that no client has to canonicalise it.
var message = []byte("Content-Type: text/plain; charset=utf-8\r\n\r\nmailca client test\r\n")

// CommandError reports a client command that failed, or whose output did
// not show that the client accepted what it was given.
type CommandError struct {
	Cmd    string // the command line, shell-quoted; secrets travel in files or stdin
	Output string // combined standard output and standard error
	Err    error  // the exit error, or why the output is not acceptance
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("clients: %s: %v\n%s", e.Cmd, e.Err, e.Output)
}

func (e *CommandError) Unwrap() error { return e.Err }

// RequireTool returns the path of the named program; it skips the test when
// the program is missing, or fails it when CI=true.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("clients: %s is required in CI: %v", name, err)
	}
	tb.Skipf("clients: %s not installed: %v", name, err)
	return ""
}

// failOrSkip ends the test for err: as RequireTool does when a program is
// missing, with tb.Fatal otherwise.
func failOrSkip(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, exec.ErrNotFound) {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("clients: a client is required in CI: %v", err)
		}
		tb.Skipf("clients: a client is not installed: %v", err)
	}
	tb.Fatal(err)
}

// requireTools calls RequireTool for each name.
func requireTools(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		RequireTool(tb, name)
	}
}

// invocation is one client command.
type invocation struct {
	env   []string // added to the environment
	stdin []byte
	args  []string // program and arguments
}

// run executes inv within CommandTimeout and returns its combined output.
// The locale is forced to C because the helpers read the clients' messages.
func run(ctx context.Context, inv invocation) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, inv.args[0], inv.args[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "LANGUAGE=C")
	cmd.Env = append(cmd.Env, inv.env...)
	if inv.stdin != nil {
		cmd.Stdin = bytes.NewReader(inv.stdin)
	}
	// Should a daemon the client starts (gpg-agent) keep the output pipes
	// open, WaitDelay stops Wait from blocking until the daemon exits.
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return string(out), &CommandError{Cmd: quote(inv.args), Output: string(out), Err: err}
	}
	return string(out), nil
}

// rejected reports that inv ran but its output does not show acceptance.
func rejected(inv invocation, out, format string, args ...any) error {
	return &CommandError{Cmd: quote(inv.args), Output: out, Err: fmt.Errorf(format, args...)}
}

// quote renders args as a shell command line.
func quote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@+") == "" {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// files are the inputs every client reads, written into a scratch directory.
type files struct {
	dir      string
	root     string // trust anchor, PEM
	chain    string // issuing CAs, PEM, leaf-first; "" when id.Chain is empty
	p12      string
	passFile string // holds the PKCS#12 password, without a newline
	pass     string // the PKCS#12 password, for clients that read it from stdin or the environment
	message  string
}

// writeFiles checks id and writes its parts into a new directory under
// dir, so that no file from an earlier run can pass for this run's output.
func writeFiles(dir, prefix string, id Identity) (files, error) {
	if id.Root == nil {
		return files{}, errors.New("clients: identity has no root")
	}
	if len(id.P12) == 0 {
		return files{}, errors.New("clients: identity has no PKCS#12")
	}
	if id.Email == "" {
		return files{}, errors.New("clients: identity has no email")
	}
	dir, err := os.MkdirTemp(dir, prefix)
	if err != nil {
		return files{}, fmt.Errorf("clients: %w", err)
	}
	f := files{
		dir:      dir,
		root:     filepath.Join(dir, "root.pem"),
		p12:      filepath.Join(dir, "user.p12"),
		passFile: filepath.Join(dir, "password.txt"),
		pass:     id.Password,
		message:  filepath.Join(dir, "message.txt"),
	}
	if len(id.Chain) > 0 {
		f.chain = filepath.Join(dir, "chain.pem")
	}
	write := []struct {
		path string
		data []byte
	}{
		{f.root, pemCerts(id.Root)},
		{f.p12, id.P12},
		{f.passFile, []byte(id.Password)},
		{f.message, message},
	}
	if f.chain != "" {
		write = append(write, struct {
			path string
			data []byte
		}{f.chain, pemCerts(id.Chain...)})
	}
	for _, w := range write {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return files{}, fmt.Errorf("clients: %w", err)
		}
	}
	return f, nil
}

// path names a file in the scratch directory.
func (f files) path(name string) string { return filepath.Join(f.dir, name) }

func pemCerts(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// sameFile reports whether the file at path holds want.
func sameFile(path string, want []byte) error {
	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("clients: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("clients: %s = %q, want %q", filepath.Base(path), got, want)
	}
	return nil
}
