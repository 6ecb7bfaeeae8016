package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// TestAuditVerifyFindsConsoleTampering: the console's account events
// (here an account invitation made with 'mailca admin add', between
// enrolment events) are links of the same chain, and every column of
// them, and the stored hashes, are covered. TestAuditVerifyFindsTampering
// has the enrolment events, deletions and reorderings.
func TestAuditVerifyFindsConsoleTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, seq int64)
		// want is the first broken event, relative to the tampered one.
		want int64
	}{
		{"edited action", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db, fmt.Sprintf(`UPDATE audit_events SET action = 'account.remove' WHERE seq = %d`, seq))
		}, 0},
		{"edited object", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db, fmt.Sprintf(`UPDATE audit_events SET object = 'account:mallory@example.com' WHERE seq = %d`, seq))
		}, 0},
		{"edited detail", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db, fmt.Sprintf(`UPDATE audit_events SET detail = 'role administrator' WHERE seq = %d`, seq))
		}, 0},
		{"edited actor", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db, fmt.Sprintf(`UPDATE audit_events SET actor = 'console:mallory@example.com' WHERE seq = %d`, seq))
		}, 0},
		{"edited stored hash", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db, fmt.Sprintf(`UPDATE audit_events SET hash = zeroblob(32) WHERE seq = %d`, seq))
		}, 0},
		{"edited previous hash", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db, fmt.Sprintf(`UPDATE audit_events SET prev_hash = zeroblob(32) WHERE seq = %d`, seq))
		}, 0},
		{"deleted", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db, fmt.Sprintf(`DELETE FROM audit_events WHERE seq = %d`, seq))
		}, 1},
		{"swapped with the next", func(t *testing.T, db *sql.DB, seq int64) {
			mustExec(t, db,
				fmt.Sprintf(`UPDATE audit_events SET seq = -1 WHERE seq = %d`, seq),
				fmt.Sprintf(`UPDATE audit_events SET seq = %d WHERE seq = %d`, seq, seq+1),
				fmt.Sprintf(`UPDATE audit_events SET seq = %d WHERE seq = -1`, seq+1))
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := initDir(t)
			mustMailca(t, "invite", "--dir", dir, "--email", "a@example.com")
			mustMailca(t, "admin", "add", "--dir", dir, "--email", "officer@example.com", "--role", "officer", "--all-policies")
			mustMailca(t, "invite", "--dir", dir, "--email", "b@example.com")
			verifyIntact(t, dir)
			db := rawDB(t, dir)
			var seq int64
			if err := db.QueryRow(`SELECT seq FROM audit_events WHERE action = 'account.invite' AND object = 'account:officer@example.com'`).Scan(&seq); err != nil {
				t.Fatalf("the account invitation is not in the audit log: %v", err)
			}
			tt.tamper(t, db, seq)
			code, out, errOut := mailca(t, "audit", "verify", "--dir", dir)
			want := fmt.Sprintf("chain broken at event %d:", seq+tt.want)
			if code != 1 || !strings.Contains(errOut, want) || strings.Contains(out, "intact") {
				t.Errorf("audit verify after tampering with event %d: exit %d, stdout %q, stderr %q; want exit 1 naming %q", seq, code, out, errOut, want)
			}
		})
	}
}
