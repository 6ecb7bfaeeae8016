package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/store/sqlite"
)

func TestAdminCommands(t *testing.T) {
	dir := initDir(t)
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := mustMailca(t, "admin", "add", "--dir", dir, "--email", "Ann@Example.org", "--role", "officer", "--policy", "staff", "--policy", "guests")
	link := regexp.MustCompile(`^Join link for ann@example\.org \(officer\), valid 24 hours:\n(\S+)/console/join/(\S+)\n$`).FindStringSubmatch(out)
	if link == nil {
		t.Fatalf("admin add printed %q, want the join link and its validity", out)
	}
	if link[1] != strings.TrimRight(cfg.Server.PublicURL, "/") {
		t.Errorf("join link origin %q, want server.public_url %q", link[1], cfg.Server.PublicURL)
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(link[2]); err != nil || len(b) != 32 {
		t.Errorf("join token %q is not 32 bytes of base64url", link[2])
	}

	if out := mustMailca(t, "admin", "list", "--dir", dir); strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "ID") {
		t.Errorf("admin list before any join printed %q, want only the header", out)
	}
	// The join is the console's; do it through the service so that list,
	// role and remove have an account to act on.
	join(t, cfg, link[2], "ann@example.org")
	if out := mustMailca(t, "admin", "list", "--dir", dir); !regexp.MustCompile(`\n1 +ann@example\.org +officer +guests,staff +Ann Example +never\n$`).MatchString(out) {
		t.Errorf("admin list printed %q, want ann as an officer for guests and staff", out)
	}
	if out := mustMailca(t, "admin", "role", "--dir", dir, "--email", "ann@example.org", "--role", "administrator"); out != "ann@example.org is now administrator.\n" {
		t.Errorf("admin role printed %q", out)
	}
	if code, _, stderr := mailca(t, "admin", "remove", "--dir", dir, "--email", "ann@example.org"); code != 1 || !strings.Contains(stderr, "last administrator") {
		t.Errorf("admin remove (last administrator): exit %d, %q; want 1 and the reason", code, stderr)
	}
	out = mustMailca(t, "admin", "add", "--dir", dir, "--email", "root@example.org", "--role", "administrator")
	join(t, cfg, out[strings.LastIndex(out, "/")+1:len(out)-1], "root@example.org")
	if out := mustMailca(t, "admin", "remove", "--dir", dir, "--email", "ANN@example.org"); out != "Removed ann@example.org; its sessions have ended.\n" {
		t.Errorf("admin remove printed %q", out)
	}
	if out := mustMailca(t, "admin", "list", "--dir", dir); strings.Contains(out, "ann@") || !strings.Contains(out, "root@example.org") {
		t.Errorf("admin list after remove printed %q", out)
	}

	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no subcommand", []string{"admin"}, 2},
		{"unknown subcommand", []string{"admin", "grant"}, 2},
		{"add without role", []string{"admin", "add", "--dir", dir, "--email", "bob@example.org"}, 2},
		{"add with a bad role", []string{"admin", "add", "--dir", dir, "--email", "bob@example.org", "--role", "root"}, 2},
		{"policy for an auditor", []string{"admin", "add", "--dir", dir, "--email", "bob@example.org", "--role", "auditor", "--policy", "x"}, 2},
		{"add a bad address", []string{"admin", "add", "--dir", dir, "--email", "bob", "--role", "auditor"}, 1},
		{"remove unknown", []string{"admin", "remove", "--dir", dir, "--email", "nobody@example.org"}, 1},
		{"role unknown", []string{"admin", "role", "--dir", dir, "--email", "nobody@example.org", "--role", "auditor"}, 1},
		{"officer without a scope", []string{"admin", "add", "--dir", dir, "--email", "bob@example.org", "--role", "officer"}, 2},
		{"officer with both scopes", []string{"admin", "add", "--dir", dir, "--email", "bob@example.org", "--role", "officer", "--policy", "x", "--all-policies"}, 2},
		{"role officer without a scope", []string{"admin", "role", "--dir", dir, "--email", "nobody@example.org", "--role", "officer"}, 2},
		{"all-policies for an auditor", []string{"admin", "add", "--dir", dir, "--email", "bob@example.org", "--role", "auditor", "--all-policies"}, 2},
		{"cancel without email", []string{"admin", "cancel", "--dir", dir}, 2},
		{"cancel with no invitation", []string{"admin", "cancel", "--dir", dir, "--email", "nobody@example.org"}, 1},
		{"unlock unknown", []string{"admin", "unlock", "--dir", dir, "--email", "nobody@example.org"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, _ := mailca(t, tt.args...)
			if code != tt.code {
				t.Errorf("mailca %s: exit %d, want %d", strings.Join(tt.args, " "), code, tt.code)
			}
		})
	}
}

// join joins the account of token as the console would.
func join(t *testing.T, cfg *config.Config, token, email string) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), cfg.SQLitePath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := newAuth(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	key, err := svc.NewTOTPKey(token, email)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(key.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Join(context.Background(), token, email, "Ann Example", "a long enough password", key.Sealed, code, "127.0.0.1"); err != nil {
		t.Fatalf("Join(%s) = %v", email, err)
	}
}

func TestFirstRunLink(t *testing.T) {
	dir := initDir(t)
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), cfg.SQLitePath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	if err := writeFirstRun(context.Background(), &out, true, cfg, mustAuth(t, cfg, db)); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^first run: create the first administrator at ` + regexp.QuoteMeta(strings.TrimRight(cfg.Server.PublicURL, "/")) +
		`/console/join/([A-Za-z0-9_-]{43}) \(valid 24 hours\)\n$`)
	m := re.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("printFirstRun printed %q", out.String())
	}
	svc, err := newAuth(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	j, err := svc.OpenJoin(context.Background(), m[1])
	if err != nil || !j.Setup {
		t.Errorf("OpenJoin(printed setup token) = %+v, %v; want a setup token", j, err)
	}
}

// TestFirstRunLinkNotOnTerminal: when standard output is not a terminal
// (systemd, docker), the setup link goes to a 0600 file in the data
// directory, not to the output, and the file goes once an account exists.
func TestFirstRunLinkNotOnTerminal(t *testing.T) {
	dir := initDir(t)
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), cfg.SQLitePath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	if err := printFirstRun(context.Background(), &out, cfg, mustAuth(t, cfg, db)); err != nil { // a bytes.Buffer is no terminal
		t.Fatal(err)
	}
	path := filepath.Join(dir, "setup-link.txt")
	if strings.Contains(out.String(), "/console/join/") || !strings.Contains(out.String(), path) {
		t.Fatalf("printFirstRun printed %q; want the file's path and no link", out.String())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("setup link file: %v, %v; want mode 0600", fi, err)
	}
	b, _ := os.ReadFile(path)
	m := regexp.MustCompile(`/console/join/([A-Za-z0-9_-]{43})\n$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("setup link file holds %q", b)
	}
	db.Close()
	join(t, cfg, m[1], "root@example.org")
	db, err = sqlite.Open(context.Background(), cfg.SQLitePath())
	if err != nil {
		t.Fatal(err)
	}
	if err := printFirstRun(context.Background(), &out, cfg, mustAuth(t, cfg, db)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("setup link file after the first account: %v, want it removed", err)
	}
}

// TestAdminCancelAndUnlock covers 'admin cancel', 'admin unlock' and
// --all-policies.
func TestAdminCancelAndUnlock(t *testing.T) {
	dir := initDir(t)
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	mustMailca(t, "admin", "add", "--dir", dir, "--email", "bob@example.org", "--role", "officer", "--all-policies")
	if out := mustMailca(t, "admin", "cancel", "--dir", dir, "--email", "Bob@example.org"); !strings.Contains(out, "bob@example.org is cancelled") {
		t.Errorf("admin cancel printed %q", out)
	}
	if code, _, _ := mailca(t, "admin", "cancel", "--dir", dir, "--email", "bob@example.org"); code != 1 {
		t.Errorf("admin cancel twice: exit %d, want 1", code)
	}
	out := mustMailca(t, "admin", "add", "--dir", dir, "--email", "ann@example.org", "--role", "officer", "--all-policies")
	join(t, cfg, out[strings.LastIndex(out, "/")+1:len(out)-1], "ann@example.org")
	if out := mustMailca(t, "admin", "list", "--dir", dir); !regexp.MustCompile(`ann@example\.org +officer +all `).MatchString(out) {
		t.Errorf("admin list printed %q, want ann as an officer of all policies", out)
	}
	db, err := sqlite.Open(context.Background(), cfg.SQLitePath())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := newAuth(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		svc.Login(context.Background(), "ann@example.org", "a wrong password", "000000", "192.0.2."+strconv.Itoa(i+1))
	}
	if a, _ := svc.AccountByEmail(context.Background(), "ann@example.org"); !time.Now().Before(a.LockedUntil) {
		t.Fatalf("ann not locked after 5 failures: %+v", a)
	}
	db.Close()
	if out := mustMailca(t, "admin", "unlock", "--dir", dir, "--email", "ann@example.org"); out != "ann@example.org may log in again.\n" {
		t.Errorf("admin unlock printed %q", out)
	}
	db, err = sqlite.Open(context.Background(), cfg.SQLitePath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, _ = newAuth(cfg, db)
	if a, _ := svc.AccountByEmail(context.Background(), "ann@example.org"); !a.LockedUntil.IsZero() {
		t.Errorf("ann after unlock: %+v, want unlocked", a)
	}
}

func mustAuth(t *testing.T, cfg *config.Config, db auth.Store) *auth.Service {
	t.Helper()
	svc, err := newAuth(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
