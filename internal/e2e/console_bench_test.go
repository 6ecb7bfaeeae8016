package e2e_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/web/console"
)

// consoleBenchRows is how many enrolments the list-page benchmark's
// database holds: a million, or MAILCA_BENCH_ROWS. With -benchtime 1x, as
// make test runs every benchmark once to see that it works, a tenth of
// that: building the full database takes minutes and most of a gigabyte.
func consoleBenchRows() int {
	if n, err := strconv.Atoi(os.Getenv("MAILCA_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	if f := flag.Lookup("test.benchtime"); f != nil && f.Value.String() == "1x" {
		return 100_000
	}
	return 1_000_000
}

// consoleSeedVersion names the way consoleSeed fills the database; change
// it when the seed changes, so that a cached database is built again.
const consoleSeedVersion = 3

// BenchmarkConsoleLists measures the console's list pages, each a GET over
// HTTP with a logged-in administrator's session, on a SQLite database of a
// million enrolments (see consoleBenchRows) in realistic states, policies,
// mailboxes and names, with their certificates and audit events. Building
// that database takes minutes, so it is kept in the user's cache directory
// (or MAILCA_BENCH_CACHE), keyed by the schema's migrations and the seed's
// version, and each run works on a copy.
func BenchmarkConsoleLists(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "mailca.db")
	copySeed(b, consoleSeed(b), path)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()

	// An administrator with a session. The service's clock moves half a
	// minute between joining and logging in: a TOTP code is accepted once.
	now := time.Now()
	clock := func() time.Time { return now }
	authSvc, err := auth.New(auth.Config{Store: db, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	const email, password = "root@example.com", "benchmark password 1234"
	setup, err := authSvc.SetupLink(ctx)
	if err != nil {
		b.Fatal(err)
	}
	key, err := authSvc.NewTOTPKey(setup, email)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := authSvc.Join(ctx, setup, email, "Bench Admin", password, key.Sealed, totpCode(b, key.Secret, now), "127.0.0.1"); err != nil {
		b.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	session, _, err := authSvc.Login(ctx, email, password, totpCode(b, key.Secret, now), "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	con, err := console.New(console.Config{Auth: authSvc, Enrol: enrol.NewService(enrol.Config{Store: db, PublicURL: "http://bench.example.com"}), Store: db})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", con.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(b *testing.B, path string) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.AddCookie(&http.Cookie{Name: "mailca_session", Value: session})
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("GET %s = %d, %v\n%.2000s", path, resp.StatusCode, err, body)
		}
		return string(body)
	}

	// Page 5 of the invitations, by following the next-page links.
	page5 := "/console/invitations"
	for range 4 {
		m := nextPageRE.FindStringSubmatch(get(b, page5))
		if m == nil {
			b.Fatalf("no next-page link on %s", page5)
		}
		page5 = html.UnescapeString(m[1])
	}
	// A serial to search for, from the middle of the table, and a day long
	// ago.
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	var serial string
	var oldAt int64 // a quarter of the way into the audit log
	err = ro.QueryRow(`SELECT serial FROM certificates ORDER BY rowid LIMIT 1 OFFSET (SELECT count(*) / 2 FROM certificates)`).Scan(&serial)
	if err == nil {
		err = ro.QueryRow(`SELECT at FROM audit_events WHERE seq = (SELECT max(seq) / 4 FROM audit_events)`).Scan(&oldAt)
	}
	ro.Close()
	if err != nil {
		b.Fatal(err)
	}
	oldDay := time.Unix(0, oldAt).UTC().Format("2006-01-02")

	// Each page must list rows of the seed: at least min distinct matches
	// of want (a seeded mailbox, or an audit event's object).
	mailboxes := `[a-z]+\.[a-z]+\d+@[a-z.]+`
	pages := []struct {
		name, path, want string
		min              int
	}{
		// Not a list, but it counts every enrolment by state and policy.
		{"dashboard", "/console/", `account:root@example\.com`, 1},
		{"invitations", "/console/invitations", mailboxes, 20},
		{"invitations-filtered", "/console/invitations?state=invited&policy=students", `[a-z]+\.[a-z]+\d+@students\.example\.edu`, 20},
		{"invitations-search-mailbox", "/console/invitations?q=" + seedMailboxPrefix, seedMailboxPrefix + `\d+@`, 20},
		{"invitations-search-name", "/console/invitations?q=" + seedNameQuery, seedMailboxPrefix + `\d+@`, 20},
		{"invitations-page5", page5, mailboxes, 20},
		{"applications", "/console/applications", mailboxes, 20},
		{"certificates", "/console/certificates", mailboxes, 20},
		{"certificates-search-name", "/console/certificates?q=" + seedSurnameQuery, `[a-z]+\.okafor\d+@`, 20},
		{"certificates-search-serial", "/console/certificates?q=" + serial[:10], serial, 1},
		{"audit", "/console/audit", `enrolment:\d+`, 20},
		{"audit-filtered", "/console/audit?action=enrolment.revoke", `enrolment:\d+`, 20},
		// A rare action: the administrator's own join, among a million
		// enrolment events.
		{"audit-filtered-rare", "/console/audit?action=account.join", `account:root@example\.com`, 1},
		{"audit-actor-rare", "/console/audit?actor=console:root@example.com", `account:root@example\.com`, 1},
		{"audit-object-prefix", "/console/audit?object=enrolment:", `enrolment:\d+`, 20},
		// 11,111 events (enrolment:12, :120 to :129, ...), none recent.
		{"audit-object-narrow", "/console/audit?object=enrolment:12", `enrolment:12\d*`, 20},
		{"audit-one-old-day", "/console/audit?from=" + oldDay + "&to=" + oldDay, `enrolment:\d+`, 20},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			body := get(b, p.path)
			found := map[string]bool{}
			for _, m := range regexp.MustCompile(p.want).FindAllString(body, -1) {
				found[m] = true
			}
			if len(found) < p.min {
				b.Fatalf("GET %s lists %d rows matching %s, want at least %d:\n%.3000s", p.path, len(found), p.want, p.min, body)
			}
			if p.name == "audit-filtered" && strings.Count(body, "enrolment.revoke") < p.min {
				b.Fatalf("GET %s does not list revocations", p.path)
			}
			for b.Loop() {
				get(b, p.path)
			}
		})
	}
}

var nextPageRE = regexp.MustCompile(`href="(/console/invitations\?[^"]*before=\d+[^"]*)"`)

// What the searches look for: a mailbox prefix and a name that each match
// about 400 of the million rows (one given name in 40, one surname in 60),
// and a surname that matches one certificate in 60.
const (
	seedMailboxPrefix = "ida.okafor"
	seedNameQuery     = "Ida+Okafor"
	seedSurnameQuery  = "Okafor"
)

// consoleSeed returns the path of the cached seeded database, building it
// first when the cache lacks it.
func consoleSeed(b *testing.B) string {
	b.Helper()
	dir := os.Getenv("MAILCA_BENCH_CACHE")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir = filepath.Join(cache, "mailca-bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	rows := consoleBenchRows()
	path := filepath.Join(dir, fmt.Sprintf("console-%d-seed%d-schema-%s.db", rows, consoleSeedVersion, schemaKey(b)))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	start := time.Now()
	tmp := path + fmt.Sprintf(".%d.tmp", os.Getpid())
	defer os.Remove(tmp)
	if err := seedConsoleDB(tmp, rows); err != nil {
		b.Fatalf("seeding the benchmark database: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	// Databases of the same size built for an older schema or seed are of
	// no more use.
	stale, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("console-%d-seed*-schema-*.db", rows)))
	for _, f := range stale {
		if f != path {
			os.Remove(f)
		}
	}
	b.Logf("seeded %d enrolments into %s in %v", rows, path, time.Since(start).Round(time.Second))
	return path
}

// schemaKey is a hash of the SQLite migrations in the source tree, so that
// a cached database is never used with a schema it was not built for.
func schemaKey(tb testing.TB) string {
	files, err := filepath.Glob("../store/sqlite/migrations/*.sql")
	if err != nil || len(files) == 0 {
		wd, _ := os.Getwd()
		tb.Fatalf("no migrations found from %s: %v", wd, err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return fmt.Sprintf("%d-%x", sqlite.SchemaVersion(), h.Sum(nil)[:6])
}

func copySeed(tb testing.TB, from, to string) {
	tb.Helper()
	src, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		tb.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		tb.Fatal(err)
	}
}

// The people of the seed.
var (
	seedGiven   = strings.Fields("Ada Ben Cara Dev Ella Finn Gita Hugo Ida Jon Kira Lars Mia Nils Olga Paul Quinn Rosa Sam Tara Uwe Vera Wim Xenia Yusuf Zoe Anna Bernd Chen Dana Emil Fatima Georg Hanna Ivan Jana Karl Lena Marco Nora")
	seedSurname = strings.Fields("Lee Ode Poe Smith Müller Schmidt Okafor Nguyen Garcia Rossi Dubois Novak Kowalski Jensen Silva Costa Tanaka Kim Patel Singh Cohen Murphy Walsh Byrne Hansen Berg Lund Vogel Keller Weber Fischer Wagner Becker Hoffmann Schulz Koch Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann Huber Mayer Herrmann Köhler Walter König Martin")
	seedPolicy  = []struct {
		name, domain string
		weight       int // of 100
	}{{"staff", "example.com", 60}, {"students", "students.example.edu", 30}, {"contractors", "partner.example.net", 8}, {"board", "example.com", 2}}
)

// seedConsoleDB creates the database at path with mailca's schema and
// fills it with n enrolments, the certificates of those issued or revoked,
// their batches, and one audit event each, in one transaction of multi-row
// INSERTs. The secondary indexes are dropped first and built again at the
// end, which is several times faster than updating them row by row. No
// ANALYZE runs: mailca never runs it, so the query plans are those a real
// database gets.
func seedConsoleDB(path string, n int) error {
	ctx := context.Background()
	mdb, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	svc := enrol.NewService(enrol.Config{Store: mdb, PublicURL: "http://bench.example.com"})
	for _, sp := range seedPolicy {
		p := enrol.DefaultPolicy()
		p.Name = sp.name
		if _, err := svc.SavePolicy(ctx, "cli", p); err != nil {
			mdb.Close()
			return err
		}
	}
	if err := mdb.Close(); err != nil {
		return err
	}

	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)&_pragma=foreign_keys(0)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	// 1. Drop the secondary indexes of the big tables, remembering them.
	rows, err := tx.Query(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('enrolments', 'certificates', 'audit_events')`)
	if err != nil {
		return err
	}
	var indexes [][2]string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return err
		}
		indexes = append(indexes, [2]string{name, def})
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, ix := range indexes {
		if _, err := tx.Exec(`DROP INDEX "` + ix[0] + `"`); err != nil {
			return err
		}
	}
	var prevHash []byte
	var lastSeq int64
	if err := tx.QueryRow(`SELECT COALESCE(MAX(seq), 0), COALESCE((SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1), ?) FROM audit_events`, audit.Genesis).Scan(&lastSeq, &prevHash); err != nil {
		return err
	}

	// 2. The rows, oldest first, one enrolment a minute over almost two
	// years.
	const chunk = 500
	enrolments := newSeedBulk(tx, "enrolments", `id, policy, policy_version, state, rev, channel, mailbox, mailbox_key, given_name, surname, batch_id, invited_by, terms_version,
		serial, reason, created_at, updated_at, submitted_at, decided_at, issued_at, expires_at, given_name_key, surname_key`, chunk)
	certificates := newSeedBulk(tx, "certificates", `serial, issuer_id, state, profile, mailbox, spki_sha256, not_before, not_after, lint_der, der, created_at, issued_at,
		revoked_at, revocation_reason, revocation_seq`, chunk)
	events := newSeedBulk(tx, "audit_events", `seq, at, actor, action, object, detail, prev_hash, hash`, chunk)
	batches := newSeedBulk(tx, "batches", `id, policy, filename, actor, state, rows, invited, refused, created_at, done_at`, chunk)

	rng := rand.New(rand.NewPCG(1, 2))
	// The newest enrolment was created three days ago, so that its later
	// steps are in the past too.
	end := time.Now().Unix() - 3*86400
	start := end - int64(n)*60
	const perBatch = 2000
	revocations := int64(0)
	// Each policy has a CSV batch every perBatch enrolments.
	for k := 0; k <= n/perBatch; k++ {
		for pi, p := range seedPolicy {
			at := start + int64(k*perBatch)*60
			rows := perBatch * p.weight / 100
			batches.add(k*len(seedPolicy)+pi+1, p.name, fmt.Sprintf("%s-%d.csv", p.name, k+1), "console:admin@example.com", "done", rows, rows, 0, at, at+30)
		}
	}
	for i := 1; i <= n; i++ {
		created := start + int64(i)*60
		pi := 0
		for r, acc := rng.IntN(100), 0; pi < len(seedPolicy)-1; pi++ {
			if acc += seedPolicy[pi].weight; r < acc {
				break
			}
		}
		sp := seedPolicy[pi]
		given, surname := seedGiven[rng.IntN(len(seedGiven))], seedSurname[rng.IntN(len(seedSurname))]
		mbox := strings.ToLower(asciiName(given)+"."+asciiName(surname)) + strconv.Itoa(i) + "@" + sp.domain
		// Recent enrolments are often still open; old ones have ended.
		recent := i > n*9/10
		var state string
		switch r := rng.IntN(1000); {
		case r < 550:
			state = "issued"
		case r < 750:
			state = seedPick(recent, "invited", "expired")
		case r < 800:
			state = "expired"
		case r < 840:
			state = "cancelled"
		case r < 860:
			state = "rejected"
		case r < 920:
			state = "revoked"
		case r < 950:
			state = seedPick(recent, "approved", "issued")
		default:
			state = seedPick(recent, "submitted", "issued")
		}
		channel, batch, invitedBy := "invitation", any(nil), "console:admin@example.com"
		switch r := rng.IntN(100); {
		case r < 10:
			channel, invitedBy = "referral", ""
		case r < 15:
			channel, invitedBy = "open", ""
		default:
			batch = int64(i/perBatch*len(seedPolicy) + pi + 1)
		}
		var submitted, decided, issued, expires, serial any
		reason := ""
		switch state {
		case "invited":
			expires = created + 14*86400
		case "expired":
			expires = created + 14*86400
		case "cancelled":
			reason = "left the organisation"
		default:
			submitted = created + 86400
		}
		switch state {
		case "approved", "rejected", "issued", "revoked":
			decided = created + 2*86400
		}
		if state == "rejected" {
			reason = "not eligible under this policy"
		}
		if state == "issued" || state == "revoked" {
			is := created + 2*86400 + 3600
			issued = is
			var sb [16]byte
			for j := range sb {
				sb[j] = byte(rng.IntN(256))
			}
			sb[0] |= 0x10 // no leading zero
			s := hex.EncodeToString(sb[:])
			serial = s
			var spki [32]byte
			for j := range spki {
				spki[j] = byte(rng.IntN(256))
			}
			var revokedAt, revReason, revSeq any
			if state == "revoked" {
				revocations++
				revokedAt, revReason, revSeq = is+int64(rng.IntN(300))*86400, []int{1, 4, 5}[rng.IntN(3)], revocations
			}
			certificates.add(s, "bench-issuer", "issued", "mailbox-strict", mbox, spki[:], is, is+365*86400, []byte{0x30, 0}, []byte{0x30, 0}, is, is, revokedAt, revReason, revSeq)
		}
		enrolments.add(i, sp.name, 1, state, 2, channel, mbox, mbox, given, surname, batch, invitedBy, "1",
			serial, reason, created, created+2*86400, submitted, decided, issued, expires, store.NameKey(given), store.NameKey(surname))

		// One audit event per enrolment: its latest step.
		action := map[string]string{"invited": "enrolment.invite", "expired": "enrolment.expire", "cancelled": "enrolment.cancel",
			"submitted": "enrolment.submit", "approved": "enrolment.approve", "rejected": "enrolment.reject",
			"issued": "enrolment.issue", "revoked": "enrolment.revoke"}[state]
		lastSeq++
		rec := audit.Record{Seq: lastSeq, At: time.Unix(created+2*86400, int64(i)), Actor: "console:admin@example.com", Action: action,
			Object: "enrolment:" + strconv.Itoa(i), Detail: "policy " + sp.name + " v1, " + mbox}
		rec.Hash = audit.Hash(prevHash, rec)
		events.add(rec.Seq, rec.At.UnixNano(), rec.Actor, rec.Action, rec.Object, rec.Detail, prevHash, rec.Hash)
		prevHash = rec.Hash
	}
	for _, bk := range []*seedBulk{batches, certificates, enrolments, events} {
		if err := bk.flush(); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(`INSERT INTO issuer_counters (issuer_id, revocation_seq) VALUES ('bench-issuer', ?)`, revocations); err != nil {
		return err
	}

	// 3. The indexes again.
	for _, ix := range indexes {
		if _, err := tx.Exec(ix[1]); err != nil {
			return fmt.Errorf("%s: %w", ix[0], err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.Exec(`PRAGMA journal_mode = WAL`)
	return err
}

func seedPick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// asciiName spells a name for a mailbox.
func asciiName(s string) string {
	return strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "ß", "ss", "Ä", "Ae", "Ö", "Oe", "Ü", "Ue").Replace(s)
}

// seedBulk collects rows for one table and writes them chunk rows at a time
// with one prepared multi-row INSERT.
type seedBulk struct {
	tx    *sql.Tx
	table string
	cols  string
	ncols int
	chunk int
	args  []any
	stmt  *sql.Stmt
	err   error
}

func newSeedBulk(tx *sql.Tx, table, cols string, chunk int) *seedBulk {
	return &seedBulk{tx: tx, table: table, cols: cols, ncols: strings.Count(cols, ",") + 1, chunk: chunk}
}

func (b *seedBulk) add(vals ...any) {
	if len(vals) != b.ncols {
		panic(fmt.Sprintf("bulk %s: %d values for %d columns", b.table, len(vals), b.ncols))
	}
	b.args = append(b.args, vals...)
	if len(b.args) == b.ncols*b.chunk && b.err == nil {
		if b.stmt == nil {
			b.stmt, b.err = b.tx.Prepare(b.insert(b.chunk))
		}
		if b.err == nil {
			_, b.err = b.stmt.Exec(b.args...)
		}
		b.args = b.args[:0]
	}
}

func (b *seedBulk) flush() error {
	if b.err != nil || len(b.args) == 0 {
		return b.err
	}
	_, err := b.tx.Exec(b.insert(len(b.args)/b.ncols), b.args...)
	b.args = b.args[:0]
	return err
}

func (b *seedBulk) insert(rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", b.ncols), ",") + ")"
	return "INSERT INTO " + b.table + " (" + b.cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+",", rows), ",")
}
