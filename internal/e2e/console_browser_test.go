package e2e_test

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/testkit/clients"
)

// outputBuffer is a bytes.Buffer that a process writes while the test reads.
type outputBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *outputBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *outputBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devServer is mailca serve on a data directory with no SMTP server, so
// that email stays in the outbox and the development mailbox shows it.
// Its standard output and its log (standard error) are kept apart: the
// first-run setup link must never reach the log. Standard output is a pipe
// here, not a terminal, so serve writes the link to setup-link.txt in the
// data directory and prints that file's path.
type devServer struct {
	*instance
	stdout, stderr *outputBuffer
}

func startDevServer(t *testing.T, policy string) *devServer {
	t.Helper()
	in := &instance{t: t, dir: filepath.Join(t.TempDir(), "data"), addr: freeAddr(t)}
	in.base = "http://" + in.addr
	in.mailca("init", "--dir", in.dir, "--org", "Example Org", "--public-url", in.base, "--pki-url", "http://pki.example.com")
	if policy != "" {
		p := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(p, []byte(policy), 0o600); err != nil {
			t.Fatal(err)
		}
		in.mailca("policy", "import", "--dir", in.dir, p)
	}
	s := &devServer{instance: in, stdout: &outputBuffer{}, stderr: &outputBuffer{}}
	// The default log level: at debug, a server without SMTP logs the
	// development mailbox's links on purpose.
	in.serve = exec.Command(mailcaBin, "serve", "--dir", in.dir, "--addr", in.addr)
	in.serve.Stdout, in.serve.Stderr = s.stdout, s.stderr
	if err := in.serve.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := in.serve
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(s.stdout.String(), "mailca listening on") {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.stdout.String(), "mailca listening on") {
		t.Fatalf("mailca serve did not come up:\n%s\n%s", s.stdout, s.stderr)
	}
	return s
}

func (s *devServer) stop() {
	s.t.Helper()
	s.serve.Process.Signal(syscall.SIGTERM)
	if err := s.serve.Wait(); err != nil {
		s.t.Errorf("mailca serve exited with %v on SIGTERM\n%s", err, s.stderr)
	}
}

var setupFileRE = regexp.MustCompile(`first run: the link to create the first administrator \(valid [^)]+\) is in (\S+)\n`)

// setupLink returns the first-run link mailca serve wrote to the file it
// named on standard output (a pipe, so never the link itself).
func (s *devServer) setupLink() string {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := setupFileRE.FindStringSubmatch(s.stdout.String()); m != nil {
			if strings.Contains(s.stdout.String(), "/console/join/") {
				s.t.Fatalf("mailca serve printed the setup link on a pipe:\n%s", s.stdout)
			}
			b, err := os.ReadFile(m[1])
			if err != nil {
				s.t.Fatalf("reading the setup link file: %v", err)
			}
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("mailca serve printed no first-run setup link:\n%s", s.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mailLink reads a mailbox page in tab (the console's /console/mail, or
// /dev/mailbox) and returns the enrolment link of the newest email to addr
// whose subject contains subject.
func (s *devServer) mailLink(tab *testkit.Tab, mailbox, addr, subject string) string {
	s.t.Helper()
	find := fmt.Sprintf(`(() => {
		for (const tr of document.querySelectorAll("main table tbody tr")) {
			const cells = [...tr.querySelectorAll("td")].map(td => td.textContent.trim().toLowerCase());
			const a = [...tr.querySelectorAll("a")].find(a => a.textContent.toLowerCase().includes(%q));
			if (cells.includes(%q) && a) return a.href;
		}
		return "";
	})()`, strings.ToLower(subject), strings.ToLower(addr))
	var msg string
	deadline := time.Now().Add(20 * time.Second)
	for msg == "" {
		tab.Open(s.base + mailbox)
		msg = testkit.Get(tab, chromedp.Evaluate[string](find))
		if msg == "" && time.Now().After(deadline) {
			s.t.Fatalf("no email to %s about %q in %s:\n%s", addr, subject, mailbox, tab.Text("main"))
		}
	}
	tab.Open(msg)
	link := testkit.Get(tab, chromedp.Evaluate[string](`(() => {
		for (const a of document.querySelectorAll("main pre a")) {
			if (/\/[ea]\/[A-Za-z0-9_-]{40,}$/.test(a.href)) return a.href;
		}
		return "";
	})()`))
	if link == "" {
		s.t.Fatalf("the email to %s about %q in %s has no enrolment link", addr, subject, mailbox)
	}
	return link
}

const consolePolicy = `name: staff
channels: {invitation: true}
approval: {mode: manual}
key_modes: [server]
profile: mailbox-strict
terms: {version: "1", text: "I will guard my key."}
fields:
  - {name: given_name, label: Given name, editable: true}
  - {name: surname, label: Surname, editable: true}
`

// TestConsoleInBrowser runs the RA Management Console in Chromium, as an
// administrator and a user each in a browser context of their own: the
// first-run setup with TOTP, login, a CSV upload with a bad row and its
// batch report, the invitation from the development mailbox, the
// enrolment form, approval in the Authorization Panel, activation with a
// server-generated key, and the PKCS#12 download. Then no token, password
// or TOTP secret of the run may be in the server's log or the audit log,
// and the audit chain must verify.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and mailca serve; not in -short mode")
	}
	b := testkit.NewBrowser(t)
	srv := startDevServer(t, consolePolicy)
	admin, user := b.NewTab("admin"), b.NewTab("user")
	var secrets []string // every secret the run uses, for the log checks
	secret := func(what, s string) string {
		if len(s) < 8 {
			t.Fatalf("%s %q is too short to be searched for", what, s)
		}
		secrets = append(secrets, s)
		return s
	}

	// 1. First-run setup: the link mailca serve printed.
	const adminEmail, adminPassword = "root@example.com", "correct horse battery staple 42"
	secret("password", adminPassword)
	setup := srv.setupLink()
	secret("setup token", tokenOf(setup))
	admin.Open(setup)
	admin.Screenshot("setup")
	totpSecret := secret("TOTP secret", strings.TrimSpace(admin.Text("#totp-secret")))
	if src := testkit.Get(admin, chromedp.AttributeValue(chromedp.CSS("#totp-qr"), "src")).Value; !strings.HasPrefix(src, "data:image/png;base64,") {
		t.Errorf("the TOTP QR code is not a PNG data URL: %.40q", src)
	}
	joinedAt := time.Now()
	admin.Fill(map[string]string{"#email": adminEmail, "#name": "Root Admin", "#password": adminPassword, "#password2": adminPassword, "#code": totpCode(t, totpSecret, joinedAt)})
	admin.Submit("form button[type=submit]")
	noFormErrors(t, admin, "after joining")

	// 2. Log in. A code is accepted once, so the login waits for the step
	// after the one used to join.
	for time.Now().Unix()/30 == joinedAt.Unix()/30 {
		time.Sleep(time.Until(time.Unix((joinedAt.Unix()/30+1)*30, 0)) + 100*time.Millisecond)
	}
	admin.Open(srv.base + "/console/login")
	admin.Fill(map[string]string{"#email": adminEmail, "#password": adminPassword, "#code": totpCode(t, totpSecret, time.Now())})
	admin.Submit("form button[type=submit]")
	if loc := admin.Location(); loc != srv.base+"/console/" {
		t.Fatalf("after logging in the browser is at %s, want the dashboard:\n%s", loc, admin.Text("body"))
	}
	sessions := 0
	for _, c := range admin.Cookies() {
		if strings.Contains(c.Name, "session") {
			sessions++
			secret("session token", c.Value)
			if !c.HTTPOnly {
				t.Errorf("the session cookie %s is readable by scripts", c.Name)
			}
		}
	}
	if sessions != 1 {
		t.Fatalf("after logging in the browser holds %d session cookies, want 1", sessions)
	}
	if !strings.Contains(admin.Text("h1"), "Dashboard") {
		t.Errorf("the dashboard's heading is %q", admin.Text("h1"))
	}
	admin.Screenshot("dashboard")

	// 3. A CSV batch of three good rows and one bad one.
	csvPath := filepath.Join(t.TempDir(), "staff.csv")
	os.WriteFile(csvPath, []byte("E-Mail;Vorname;Nachname\r\nann@example.com;Ann;Lee\r\nnot-an-address;X;Y\r\nben@example.com;Ben;Ode\r\ncat@example.com;Cat;Poe\r\n"), 0o600)
	admin.Open(srv.base + "/console/invitations/upload")
	admin.Do(
		chromedp.SetValue(chromedp.CSS(`select[name="policy"]`), "staff"),
		chromedp.SetUploadFiles(chromedp.CSS(`input[type="file"][name="file"]`), []string{csvPath}),
	)
	admin.Screenshot("upload")
	admin.Submit(`form[enctype="multipart/form-data"] button[type=submit]`)
	batch := admin.Location()
	if !regexp.MustCompile(`/console/batches/\d+$`).MatchString(batch) {
		t.Fatalf("the upload led to %s, want /console/batches/{id}:\n%s", batch, admin.Text("body"))
	}
	deadline := time.Now().Add(time.Minute)
	for state := admin.Text("#batch-state"); state != "done"; state = admin.Text("#batch-state") {
		if state != "importing" || time.Now().After(deadline) {
			t.Fatalf("batch state %q, want done:\n%s", state, admin.Text("body"))
		}
		time.Sleep(200 * time.Millisecond)
		admin.Open(batch)
	}
	admin.Screenshot("batch-report")
	report := admin.Text("main")
	for _, want := range []string{"not-an-address", "ann@example.com", "ben@example.com", "cat@example.com"} {
		if !strings.Contains(report, want) {
			t.Errorf("the batch report does not name %s:\n%s", want, report)
		}
	}
	if !regexp.MustCompile(`(?i)not-an-address[^\n]*(invalid|refused)`).MatchString(report) {
		t.Errorf("the batch report does not say why not-an-address was refused:\n%s", report)
	}
	admin.Open(srv.base + "/console/invitations?state=invited")
	invited := admin.Text("main")
	for _, want := range []string{"ann@example.com", "ben@example.com", "cat@example.com"} {
		if !strings.Contains(invited, want) {
			t.Errorf("%s is not in the list of invited people:\n%s", want, invited)
		}
	}
	if strings.Contains(invited, "not-an-address") {
		t.Errorf("the bad row was invited:\n%s", invited)
	}
	admin.Screenshot("invitations")

	// 4. The invitation, from the development mailbox of the console.
	admin.Open(srv.base + "/console/mail")
	admin.Screenshot("mail")
	for _, who := range []string{"ben@example.com", "cat@example.com"} {
		secret("invitation token", tokenOf(srv.mailLink(admin, "/console/mail", who, "invitation")))
	}
	inv := srv.mailLink(admin, "/console/mail", "ann@example.com", "invitation")
	secret("invitation token", tokenOf(inv))
	admin.Screenshot("mail-invitation")

	// 5. The user completes the enrolment form, in a browser context of
	// their own: the administrator's session is not theirs.
	user.Open(inv)
	if user.Has(`a[href="/console/"]`) {
		t.Errorf("the user's browser shows the console's navigation")
	}
	user.Screenshot("enrolment-form")
	user.Do(chromedp.Click(chromedp.CSS("#accept-terms")))
	user.Submit(`form[method="post"] button[type=submit]`)
	if body := user.Text("main"); !strings.Contains(body, "Thank you") {
		t.Fatalf("after the form:\n%s", body)
	}
	user.Screenshot("submitted")
	user.Open(srv.base + "/console/")
	if !strings.Contains(user.Location(), "/console/login") {
		t.Errorf("the user's browser reached %s without logging in", user.Location())
	}

	// 6. The administrator approves in the Authorization Panel.
	admin.Open(srv.base + "/console/applications")
	admin.Screenshot("applications")
	detail := testkit.Get(admin, chromedp.Evaluate[string](`(() => {
		for (const tr of document.querySelectorAll("tr")) {
			if (!tr.textContent.includes("ann@example.com")) continue;
			const a = tr.querySelector('a[href*="/console/enrolments/"]');
			if (a) return a.href;
		}
		return "";
	})()`))
	if detail == "" {
		t.Fatalf("ann's application is not in the Authorization Panel:\n%s", admin.Text("main"))
	}
	admin.Open(detail)
	if body := admin.Text("main"); !strings.Contains(body, "ann@example.com") || !strings.Contains(body, "submitted") {
		t.Errorf("the application's page does not show ann's submitted application:\n%s", body)
	}
	admin.Screenshot("application-detail")
	admin.Submit(`form[action$="/approve"] button[type=submit]`)
	noFormErrors(t, admin, "after approving")
	admin.Open(detail)
	if body := admin.Text("main"); !strings.Contains(body, "approved") {
		t.Errorf("after approval the application's page says:\n%s", body)
	}
	admin.Screenshot("application-approved")

	// 7. The user activates with a key the server makes, and downloads it.
	// The user's mail program: /dev/mailbox, which needs no session.
	act := srv.mailLink(user, "/dev/mailbox", "ann@example.com", "approved")
	secret("activation token", tokenOf(act))
	user.Open(act)
	user.Screenshot("activate")
	user.Do(chromedp.Click(chromedp.CSS(`input[name="mode"][value="server"]`)))
	user.Submit(`form.activate button[type=submit]`)
	pw := secret("PKCS#12 password", strings.TrimSpace(user.Text("#p12-password")))
	user.Screenshot("activated")
	p12 := user.Download(`a[download][href^="data:application/x-pkcs12"]`)
	key, leaf, chain, err := pkcs12.DecodeChain(p12, pw)
	if err != nil || key == nil || len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "ann@example.com" {
		t.Fatalf("the downloaded PKCS#12 (%d bytes) does not open with the password shown: %v", len(p12), err)
	}
	if len(chain) == 0 {
		t.Errorf("the PKCS#12 carries no chain")
	}
	root, issuing := roots(t, srv.instance)
	clients.GoVerify(t, leaf, clients.Identity{Email: "ann@example.com", P12: p12, Password: pw, Root: root, Chain: issuing})

	// 8. Logging out ends the session.
	admin.Open(srv.base + "/console/")
	admin.Submit(`form[action="/console/logout"] button`)
	admin.Open(srv.base + "/console/")
	if !strings.Contains(admin.Location(), "/console/login") {
		t.Errorf("after logging out the browser reached %s", admin.Location())
	}
	admin.CheckConsole()
	user.CheckConsole()

	// 9. No secret in the log or the audit log; the chain verifies.
	srv.stop()
	logs := srv.stderr.String()
	if !strings.Contains(logs, "http request") || !strings.Contains(logs, "/console/") {
		t.Fatalf("the serve log has no console request lines; the check would prove nothing:\n%s", logs)
	}
	export := srv.mailca("audit", "export", "--dir", srv.dir)
	if !strings.Contains(export, "console:"+adminEmail) {
		t.Errorf("no audit event has the administrator as its actor; the check would prove little:\n%s", export)
	}
	raw := auditTable(t, srv.dir)
	for _, s := range secrets {
		for _, where := range []struct{ name, text string }{{"serve log", logs}, {"audit export", export}, {"audit table", raw}} {
			if strings.Contains(where.text, s) {
				t.Errorf("the %s contains a secret (%.4s...)", where.name, s)
			}
		}
	}
	srv.mailca("audit", "verify", "--dir", srv.dir)
}

// auditTable returns every column of every audit event as text, the hashes
// in hex.
func auditTable(t *testing.T, dir string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "mailca.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM audit_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var seq, at int64
		var actor, action, object, detail string
		var prev, hash []byte
		if err := rows.Scan(&seq, &at, &actor, &action, &object, &detail, &prev, &hash); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", seq, at, actor, action, object, detail, hex.EncodeToString(prev), hex.EncodeToString(hash))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// totpCode returns the TOTP code of secret at time at.
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatalf("totp.GenerateCode: %v", err)
	}
	return c
}

// noFormErrors fails the test when the page shows an error summary.
func noFormErrors(t *testing.T, tab *testkit.Tab, when string) {
	t.Helper()
	if tab.Has(".error-summary") {
		t.Fatalf("%s the page shows errors: %s", when, tab.Text(".error-summary"))
	}
}
