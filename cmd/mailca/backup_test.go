package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBackupOfBusyDatabase takes backups while invitations are being
// written, restores each into a data directory, and verifies the audit
// chain of the restored database.
func TestBackupOfBusyDatabase(t *testing.T) {
	dir := initDir(t)
	csv := filepath.Join(t.TempDir(), "many.csv")
	var b strings.Builder
	b.WriteString("email\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "u%d@example.com\n", i)
	}
	os.WriteFile(csv, []byte(b.String()), 0o600)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if code, _, errOut := mailca(t, "invite", "--dir", dir, csv); code != 0 {
			t.Errorf("invite: %s", errOut)
		}
	}()
	var backups []string
	for i := range 3 {
		out := filepath.Join(t.TempDir(), fmt.Sprintf("b%d.db", i))
		mustMailca(t, "backup", "--dir", dir, "--out", out)
		backups = append(backups, out)
	}
	wg.Wait()
	if code, _, errOut := mailca(t, "backup", "--dir", dir, "--out", backups[0]); code != 1 || !strings.Contains(errOut, "never overwrites") {
		t.Errorf("backup over an existing file: exit %d, %q", code, errOut)
	}
	for _, bk := range backups {
		restored := filepath.Join(t.TempDir(), "restored")
		os.MkdirAll(restored, 0o700)
		cfg, _ := os.ReadFile(filepath.Join(dir, "mailca.toml"))
		os.WriteFile(filepath.Join(restored, "mailca.toml"), cfg, 0o600)
		data, _ := os.ReadFile(bk)
		os.WriteFile(filepath.Join(restored, "mailca.db"), data, 0o600)
		out := mustMailca(t, "audit", "verify", "--dir", restored)
		if !strings.Contains(out, "intact") {
			t.Errorf("restored backup %s: %s", bk, out)
		}
	}
}
