package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// auditDir returns a data directory whose audit log holds six events:
// four invitations, a resend and a cancellation.
func auditDir(t *testing.T) string {
	t.Helper()
	dir := initDir(t)
	for _, who := range []string{"a", "b", "c", "d"} {
		mustMailca(t, "invite", "--dir", dir, "--email", who+"@example.com")
	}
	mustMailca(t, "resend", "--dir", dir, "2")
	mustMailca(t, "cancel", "--dir", dir, "--reason", "left the company", "3")
	return dir
}

var intactRE = regexp.MustCompile(`^audit log intact: (\d+) events, head ([0-9a-f]{64})\n$`)

// verifyIntact runs audit verify, which must pass, and returns the count
// and head it printed.
func verifyIntact(t *testing.T, dir string, extra ...string) (count, head string) {
	t.Helper()
	out := mustMailca(t, append([]string{"audit", "verify", "--dir", dir}, extra...)...)
	m := intactRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("audit verify printed %q", out)
	}
	return m[1], m[2]
}

// rawDB opens the database file directly, as someone with write access to
// it but not to mailca would.
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "mailca.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// rehash rewrites the hash of event seq to match its (edited) content and
// its stored prev_hash: what a tamperer who knows the scheme would do.
func rehash(t *testing.T, db *sql.DB, seq int64) {
	t.Helper()
	r := audit.Record{Seq: seq}
	var at int64
	if err := db.QueryRow(`SELECT at, actor, action, object, detail, prev_hash FROM audit_events WHERE seq = ?`, seq).
		Scan(&at, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.Prev); err != nil {
		t.Fatal(err)
	}
	r.At = time.Unix(0, at)
	if _, err := db.Exec(`UPDATE audit_events SET hash = ? WHERE seq = ?`, audit.Hash(r.Prev, r), seq); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, db *sql.DB)
		wantSeq int
	}{
		{"edited detail", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE audit_events SET detail = 'policy default v1, z@example.com' WHERE seq = 3`)
		}, 3},
		{"edited actor", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE audit_events SET actor = 'system' WHERE seq = 5`)
		}, 5},
		{"edited time", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE audit_events SET at = at - 3600000000000 WHERE seq = 2`)
		}, 2},
		{"deleted middle", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq = 3`)
		}, 4},
		{"deleted first", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq = 1`)
		}, 2},
		{"swapped content", func(t *testing.T, db *sql.DB) {
			mustExec(t, db,
				`CREATE TEMP TABLE s AS SELECT * FROM audit_events WHERE seq IN (2, 3)`,
				`UPDATE audit_events SET (at, actor, action, object, detail, prev_hash, hash) =
					(SELECT at, actor, action, object, detail, prev_hash, hash FROM s WHERE s.seq = 5 - audit_events.seq)
				 WHERE seq IN (2, 3)`)
		}, 2},
		{"reordered seq", func(t *testing.T, db *sql.DB) {
			mustExec(t, db,
				`UPDATE audit_events SET seq = 100 WHERE seq = 4`,
				`UPDATE audit_events SET seq = 4 WHERE seq = 5`,
				`UPDATE audit_events SET seq = 5 WHERE seq = 100`)
		}, 4},
		{"edited and rehashed", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE audit_events SET detail = 'policy default v1, z@example.com' WHERE seq = 3`)
			rehash(t, db, 3)
		}, 4},
		{"inserted", func(t *testing.T, db *sql.DB) {
			mustExec(t, db,
				`UPDATE audit_events SET seq = seq + 100 WHERE seq >= 4`, // in two steps: seq + 1 collides row by row
				`UPDATE audit_events SET seq = seq - 99 WHERE seq >= 100`,
				`INSERT INTO audit_events SELECT 4, at, actor, action, object, detail, prev_hash, hash FROM audit_events WHERE seq = 3`)
		}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := auditDir(t)
			if n, _ := verifyIntact(t, dir); n != "7" { // init's policy.save, then six
				t.Fatalf("audit verify counted %s events, want 7", n)
			}
			tt.tamper(t, rawDB(t, dir))
			code, out, errOut := mailca(t, "audit", "verify", "--dir", dir)
			want := fmt.Sprintf("chain broken at event %d:", tt.wantSeq)
			if code != 1 || !strings.Contains(errOut, want) {
				t.Errorf("audit verify after tampering: exit %d, stdout %q, stderr %q; want exit 1 naming %q", code, out, errOut, want)
			}
			if strings.Contains(out, "intact") {
				t.Errorf("audit verify printed %q", out)
			}
		})
	}
}

// TestAuditVerifyAnchor: deleting the last events, or rewriting the chain
// from some event on, leaves a chain that verifies; an anchor recorded
// before shows it.
func TestAuditVerifyAnchor(t *testing.T) {
	tests := []struct {
		name      string
		tamper    func(t *testing.T, db *sql.DB)
		wantCount string // what plain verify counts afterwards
		countFail bool   // whether --expect-count alone fails
	}{
		{"last deleted", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq = 7`)
		}, "6", true},
		{"last two deleted", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit_events WHERE seq >= 6`)
		}, "5", true},
		{"all deleted", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `DELETE FROM audit_events`)
		}, "0", true},
		{"tail rewritten", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE audit_events SET detail = 'nothing happened' WHERE seq = 6`)
			rehash(t, db, 6)
			mustExec(t, db, `UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_events WHERE seq = 6) WHERE seq = 7`)
			rehash(t, db, 7)
		}, "7", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := auditDir(t)
			count, head := verifyIntact(t, dir)
			// The anchor passes on the log it came from, and after it grows.
			verifyIntact(t, dir, "--expect-head", head, "--expect-count", count)
			verifyIntact(t, dir, "--expect-head", strings.ToUpper(head))
			tt.tamper(t, rawDB(t, dir))

			if n, _ := verifyIntact(t, dir); n != tt.wantCount {
				t.Errorf("plain verify counts %s events, want %s", n, tt.wantCount)
			}
			for _, args := range [][]string{
				{"--expect-head", head},
				{"--expect-head", head, "--expect-count", count},
				{"--expect-count", count},
			} {
				code, out, errOut := mailca(t, append([]string{"audit", "verify", "--dir", dir}, args...)...)
				wantFail := args[0] == "--expect-head" || tt.countFail
				if wantFail && (code != 1 || !strings.Contains(errOut, "does not reach the expected head")) {
					t.Errorf("audit verify %s: exit %d, stdout %q, stderr %q; want exit 1", strings.Join(args, " "), code, out, errOut)
				}
				if !wantFail && code != 0 {
					t.Errorf("audit verify %s: exit %d, stderr %q; want 0", strings.Join(args, " "), code, errOut)
				}
			}
		})
	}

	t.Run("grown since", func(t *testing.T) {
		dir := auditDir(t)
		count, head := verifyIntact(t, dir)
		mustMailca(t, "invite", "--dir", dir, "--email", "e@example.com")
		if n, newHead := verifyIntact(t, dir, "--expect-head", head, "--expect-count", count); n != "8" || newHead == head {
			t.Errorf("after one more event: %s events, head %s (was %s)", n, newHead, head)
		}
	})
	t.Run("fresh log", func(t *testing.T) {
		// init's one event: the default policy's first version.
		dir := initDir(t)
		count, head := verifyIntact(t, dir)
		if count != "1" || head == strings.Repeat("0", 64) {
			t.Errorf("fresh log: %s events, head %s", count, head)
		}
		verifyIntact(t, dir, "--expect-head", head, "--expect-count", "1")
	})
	t.Run("bad options", func(t *testing.T) {
		dir := initDir(t)
		for _, args := range [][]string{
			{"--expect-head", "abc"},
			{"--expect-head", strings.Repeat("x", 64)},
			{"--expect-count", "-1"},
			{"--expect-count", "many"},
			{"surplus"},
		} {
			if code, _, _ := mailca(t, append([]string{"audit", "verify", "--dir", dir}, args...)...); code != 2 {
				t.Errorf("audit verify %s: exit %d, want 2", strings.Join(args, " "), code)
			}
		}
		for _, args := range [][]string{{"audit"}, {"audit", "frobnicate"}, {"audit", "export", "--dir", dir, "--since", "yesterday"}} {
			if code, _, _ := mailca(t, args...); code != 2 {
				t.Errorf("mailca %s: exit %d, want 2", strings.Join(args, " "), code)
			}
		}
		if code, _, errOut := mailca(t, "audit", "--help"); code != 0 || !strings.Contains(errOut, "Usage: mailca audit verify") {
			t.Errorf("audit --help: exit %d, %q", code, errOut)
		}
	})
}

// readExport parses an audit export, checking its form, and returns its
// rows without the header.
func readExport(t *testing.T, out string) [][]string {
	t.Helper()
	body, ok := strings.CutPrefix(out, "\uFEFF")
	if !ok {
		t.Fatalf("export does not start with a byte order mark: %q", out)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, out)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "seq,time,actor,action,object,detail,hash" {
		t.Fatalf("export header %v", rows)
	}
	return rows[1:]
}

func TestAuditExport(t *testing.T) {
	dir := auditDir(t)
	// Events from a hostile actor and detail, written as the store would.
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []enrol.Event{
		{Actor: "@SUM(1)", Action: "enrolment.cancel", Object: "enrolment:4", Detail: "=cmd|' /C calc'!A0"},
		{Actor: "user:x@example.com", Action: "enrolment.submit", Object: "-enrolment:9", Detail: "+1\r\n\t-2"},
	} {
		if err := db.InTx(ctx, func(tx enrol.Tx) error { return tx.Audit(e) }); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	before := time.Now().UTC()
	out := mustMailca(t, "audit", "export", "--dir", dir)
	if !strings.Contains(out, "\r\n") {
		t.Errorf("export does not use CR LF line ends")
	}
	rows := readExport(t, out)
	if len(rows) != 10 {
		t.Fatalf("export has %d rows, want 10 (init's, six, two hostile, the export itself):\n%s", len(rows), out)
	}
	for i, row := range rows {
		if row[0] != fmt.Sprint(i+1) {
			t.Errorf("row %d has seq %s", i+1, row[0])
		}
		if ts, err := time.Parse(time.RFC3339Nano, row[1]); err != nil || ts.Location() != time.UTC || !strings.HasSuffix(row[1], "Z") {
			t.Errorf("row %d time %q is not RFC 3339 UTC: %v", i+1, row[1], err)
		}
		if h, err := hex.DecodeString(row[6]); err != nil || len(h) != 32 {
			t.Errorf("row %d hash %q", i+1, row[6])
		}
	}
	if got, want := rows[7][2:6], []string{"'@SUM(1)", "enrolment.cancel", "enrolment:4", "'=cmd|' /C calc'!A0"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("hostile event exported as %q, want %q", got, want)
	}
	if got, want := rows[8][2:6], []string{"user:x@example.com", "enrolment.submit", "'-enrolment:9", "'+1\n\t-2"}; strings.Join(got, "|") != strings.Join(want, "|") {
		// encoding/csv reads CR LF inside a quoted field as LF.
		t.Errorf("second hostile event exported as %q, want %q", got, want)
	}
	for _, row := range rows {
		for _, c := range row {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("cell %q starts with a formula character", c)
			}
		}
	}
	// The export recorded itself, and the chain still verifies.
	if got := rows[9][2:6]; strings.Join(got, "|") != "cli|audit.export|audit|all events" {
		t.Errorf("export's own event = %q", got)
	}
	if ts, _ := time.Parse(time.RFC3339Nano, rows[9][1]); ts.Before(before.Add(-time.Second)) {
		t.Errorf("export event at %v, before the export started (%v)", ts, before)
	}
	if n, head := verifyIntact(t, dir); n != "10" || head != rows[9][6] {
		t.Errorf("after export: %s events, head %s; want 10, %s", n, head, rows[9][6])
	}

	// Filters.
	tests := []struct {
		args []string
		want []string // seqs
	}{
		{[]string{"--action", "enrolment.invite"}, []string{"2", "3", "4", "5"}},
		{[]string{"--actor", "@SUM(1)"}, []string{"8"}},
		{[]string{"--object", "enrolment:2"}, []string{"3", "6"}},
		{[]string{"--actor", "cli", "--action", "audit.export"}, []string{"10", "11", "12", "13", "14"}}, // each export records itself first
		{[]string{"--since", rows[9][1]}, []string{"10", "11", "12", "13", "14", "15"}},
		{[]string{"--until", rows[1][1]}, []string{"1"}},
		{[]string{"--action", "certificate.revoke"}, nil},
	}
	for _, tt := range tests {
		rows := readExport(t, mustMailca(t, append([]string{"audit", "export", "--dir", dir}, tt.args...)...))
		var got []string
		for _, r := range rows {
			got = append(got, r[0])
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("audit export %s: seqs %v, want %v", strings.Join(tt.args, " "), got, tt.want)
		}
	}
	last := readExport(t, mustMailca(t, "audit", "export", "--dir", dir, "--action", "audit.export"))
	if d := last[len(last)-1][5]; d != `events with action "audit.export"` {
		t.Errorf("filtered export recorded as %q", d)
	}
	verifyIntact(t, dir)
}

// TestAuditNeverHoldsTokens: link tokens exist only in the outbox's data
// (erased once sent); no audit event holds one, nor its stored hash.
func TestAuditNeverHoldsTokens(t *testing.T) {
	dir := initDir(t)
	mustMailca(t, "invite", "--dir", dir, "--email", "a@example.com")
	csvFile := filepath.Join(t.TempDir(), "people.csv")
	os.WriteFile(csvFile, []byte("email\nb@example.com\nc@example.com\n"), 0o600)
	mustMailca(t, "invite", "--dir", dir, csvFile)
	mustMailca(t, "resend", "--dir", dir, "1")
	export := mustMailca(t, "audit", "export", "--dir", dir)

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := db.Messages(ctx, outbox.Filter{Limit: 100})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, m := range msgs {
		link := m.Data["Link"]
		i := strings.LastIndexByte(link, '/')
		if i < 0 || len(link)-i-1 < 40 {
			t.Fatalf("message %d has no link with a token: %q", m.ID, link)
		}
		tokens = append(tokens, link[i+1:])
	}
	if len(tokens) != 4 {
		t.Fatalf("found %d tokens in the outbox, want 4 (three invitations and a resend)", len(tokens))
	}

	rows, err := rawDB(t, dir).Query(`SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM audit_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var seq, at int64
		var actor, action, object, detail string
		var prev, hash []byte
		if err := rows.Scan(&seq, &at, &actor, &action, &object, &detail, &prev, &hash); err != nil {
			t.Fatal(err)
		}
		text := strings.Join([]string{fmt.Sprint(seq), fmt.Sprint(at), actor, action, object, detail, hex.EncodeToString(prev), hex.EncodeToString(hash)}, "\x00")
		for _, tok := range tokens {
			th := enrol.HashToken(tok)
			if strings.Contains(text, tok) || strings.Contains(text, hex.EncodeToString(th)) || bytes.Contains(prev, th) || bytes.Contains(hash, th) {
				t.Errorf("audit event %d holds a link token or its hash: %q", seq, text)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Errorf("only %d audit events; the test did not exercise enough", n)
	}
	for _, tok := range tokens {
		if strings.Contains(export, tok) {
			t.Errorf("the audit export holds a link token")
		}
	}
}
