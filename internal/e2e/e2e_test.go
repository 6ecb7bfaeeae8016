// Package e2e_test drives the mailca binary end to end: mailca serve over
// real HTTP, the command line, and a loopback SMTP server.
package e2e_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit/clients"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

var mailcaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailca-e2e")
	if err != nil {
		panic(err)
	}
	mailcaBin = filepath.Join(dir, "mailca")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "the end-to-end tests build mailca and need the go command on PATH")
		os.Exit(1)
	}
	out, err := exec.Command(goTool, "build", "-o", mailcaBin, "github.com/mailca/mailca/cmd/mailca").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building mailca: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one data directory with a mailca serve process.
type instance struct {
	t       *testing.T
	dir     string
	addr    string // host:port of the web server
	base    string // http://addr
	sink    *smtpsink.Server
	serve   *exec.Cmd
	logs    *bytes.Buffer
	seenIdx int // messages of the sink already consumed by nextMail
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newInstance initialises a data directory whose mail goes to a loopback
// SMTP server and whose links point at a free loopback port.
func newInstance(t *testing.T, sinkOpts ...smtpsink.Option) *instance {
	t.Helper()
	in := &instance{t: t, dir: filepath.Join(t.TempDir(), "data"), addr: freeAddr(t), sink: smtpsink.Start(t, sinkOpts...)}
	in.base = "http://" + in.addr
	in.mailca("init", "--dir", in.dir, "--org", "Example Org", "--public-url", in.base, "--pki-url", "http://pki.example.com")
	cfgPath := filepath.Join(in.dir, "mailca.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(in.sink.Addr)
	cfg := strings.Replace(string(b), `smtp_host = ""`, fmt.Sprintf("smtp_host = %q\nsmtp_port = %s\nsmtp_tls = \"none\"", host, port), 1)
	cfg = strings.Replace(cfg, `from = "mailca@localhost"`, `from = "certificates@example.com"`, 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return in
}

// mailca runs one mailca command and returns its standard output.
func (in *instance) mailca(args ...string) string {
	in.t.Helper()
	out, code, errOut := in.try(args...)
	if code != 0 {
		in.t.Fatalf("mailca %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (in *instance) try(args ...string) (string, int, string) {
	in.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(mailcaBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		in.t.Fatal(err)
	}
	return out.String(), code, errb.String()
}

// start runs mailca serve and waits until it answers.
func (in *instance) start() {
	in.t.Helper()
	in.logs = &bytes.Buffer{}
	in.serve = exec.Command(mailcaBin, "serve", "--dir", in.dir, "--addr", in.addr, "--log-level", "debug")
	in.serve.Stdout, in.serve.Stderr = in.logs, in.logs
	if err := in.serve.Start(); err != nil {
		in.t.Fatal(err)
	}
	cmd := in.serve
	in.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(in.base + "/static/style.css")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("mailca serve did not come up:\n%s", in.logs)
}

// kill ends mailca serve abruptly, as a crash would.
func (in *instance) kill() {
	in.serve.Process.Signal(syscall.SIGKILL)
	in.serve.Wait()
}

func (in *instance) stop() {
	in.serve.Process.Signal(syscall.SIGTERM)
	if err := in.serve.Wait(); err != nil {
		in.t.Errorf("mailca serve exited with %v on SIGTERM", err)
	}
}

// email is one delivered message, decoded.
type email struct {
	to, subject, messageID, text string
	attachments                  map[string][]byte
}

// mailTo waits for the next message to addr with a subject containing
// subject, among those not consumed yet.
func (in *instance) mailTo(addr, subject string) email {
	in.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		msgs := in.sink.Messages()
		for i := in.seenIdx; i < len(msgs); i++ {
			e := decodeMail(in.t, msgs[i])
			if strings.EqualFold(e.to, addr) && strings.Contains(e.subject, subject) {
				return e
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("no email to %s about %q arrived; serve log:\n%s", addr, subject, in.logs)
	return email{}
}

func decodeMail(t *testing.T, r smtpsink.Received) email {
	t.Helper()
	e, err := parseMail(r)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// parseMail is decodeMail for goroutines other than the test's.
func parseMail(r smtpsink.Received) (email, error) {
	m, err := r.Parse()
	if err != nil {
		return email{}, fmt.Errorf("delivered message does not parse: %v", err)
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(m.Header.Get("Subject"))
	to, _ := mail.ParseAddress(m.Header.Get("To"))
	e := email{subject: subject, messageID: m.Header.Get("Message-Id"), attachments: map[string][]byte{}}
	if to != nil {
		e.to = to.Address
	}
	return e, walkParts(m.Header.Get("Content-Type"), m.Body, &e)
}

func walkParts(contentType string, body io.Reader, e *email) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("bad content type %q", contentType)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if fn := p.FileName(); fn != "" {
				b, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
				e.attachments[fn] = b
				continue
			}
			if err := walkParts(p.Header.Get("Content-Type"), p, e); err != nil {
				return err
			}
		}
	}
	if mt == "text/plain" && e.text == "" {
		b, _ := io.ReadAll(body)
		e.text = string(b)
	}
	return nil
}

var linkRE = regexp.MustCompile(`http://[0-9.:]+/[ea]/[A-Za-z0-9_-]{43}`)

func (e email) link(t *testing.T) string {
	t.Helper()
	l := linkRE.FindString(e.text)
	if l == "" {
		t.Fatalf("no link in the email %q:\n%s", e.subject, e.text)
	}
	return l
}

// page GETs url and returns the body, failing on a status other than want.
func page(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d, want %d\n%s", url, resp.StatusCode, want, b)
	}
	if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("GET %s: Referrer-Policy %q", url, rp)
	}
	return string(b)
}

func post(t *testing.T, url string, form url.Values, want int) string {
	t.Helper()
	resp, err := http.PostForm(url, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s = %d, want %d\n%s", url, resp.StatusCode, want, b)
	}
	return string(b)
}

// submitForm fills the enrolment form behind link.
func submitForm(t *testing.T, link string, given, surname string) string {
	t.Helper()
	body := page(t, link, 200)
	tv := regexp.MustCompile(`name="terms_version" value="([^"]*)"`).FindStringSubmatch(body)
	if tv == nil {
		t.Fatalf("no terms version on the form:\n%s", body)
	}
	return post(t, link, url.Values{"f_given_name": {given}, "f_surname": {surname}, "terms_version": {tv[1]}, "accept_terms": {"yes"}}, 200)
}

var (
	passwordRE = regexp.MustCompile(`id="p12-password">([^<]+)<`)
	p12RE      = regexp.MustCompile(`href="data:application/x-pkcs12;base64,([^"]+)"`)
	certRE     = regexp.MustCompile(`(?s)id="cert-pem">(.*?)</pre>`)
)

// activateServer activates with a server-generated key and returns the
// PKCS#12 and its password from the page.
func activateServer(t *testing.T, link string) ([]byte, string) {
	t.Helper()
	page(t, link, 200)
	body := post(t, link, url.Values{"mode": {"server"}}, 200)
	pw, data := passwordRE.FindStringSubmatch(body), p12RE.FindStringSubmatch(body)
	if pw == nil || data == nil {
		t.Fatalf("no password or PKCS#12 on the activation page:\n%s", body)
	}
	// The page escapes the URL as HTML does ("+" as "&#43;"); a browser
	// unescapes it before following the link.
	p12, err := base64.StdEncoding.DecodeString(html.UnescapeString(data[1]))
	if err != nil {
		t.Fatal(err)
	}
	return p12, html.UnescapeString(pw[1])
}

func roots(t *testing.T, in *instance) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	var certs []*x509.Certificate
	rest := []byte(in.mailca("ca", "chain", "--dir", in.dir))
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	return certs[len(certs)-1], certs[:len(certs)-1]
}

// TestInviteApproveActivate walks the two-stage process: a CSV batch, the
// emails as delivered, the form, approval, activation with a server key
// and with a CSR, and real clients using the result.
func TestInviteApproveActivate(t *testing.T) {
	in := newInstance(t)
	policy := filepath.Join(t.TempDir(), "staff.yaml")
	os.WriteFile(policy, []byte(`name: staff
channels: {invitation: true}
approval: {mode: manual}
notify: [ra@example.com]
key_modes: [server, csr]
profile: mailbox-strict
terms: {version: "3", text: "I will guard my key."}
fields:
  - {name: given_name, label: Given name, editable: true}
  - {name: surname, label: Surname, editable: true}
`), 0o600)
	in.mailca("policy", "import", "--dir", in.dir, policy)
	in.start()

	csvPath := filepath.Join(t.TempDir(), "staff.csv")
	os.WriteFile(csvPath, []byte("E-Mail;Vorname;Nachname\r\nann@example.com;Ann;Lee\r\nnot-an-address;X;Y\r\nben@example.com;Ben;Ode\r\n"), 0o600)
	report := in.mailca("invite", "--dir", in.dir, "--policy", "staff", csvPath)
	if !strings.Contains(report, "2,ann@example.com,invited") || !strings.Contains(report, "3,not-an-address,refused,\"invalid mailbox") {
		t.Errorf("invite report:\n%s", report)
	}

	// Ann: server-generated key.
	inv := in.mailTo("ann@example.com", "invitation")
	if !strings.Contains(inv.messageID, "@127.0.0.1>") {
		t.Errorf("Message-ID %q", inv.messageID)
	}
	if body := submitForm(t, inv.link(t), "Ann", "Lee"); !strings.Contains(body, "Thank you") {
		t.Errorf("after submit:\n%s", body)
	}
	notice := in.mailTo("ra@example.com", "Approval needed")
	_ = notice
	// Replaying the form post finds the link spent.
	post(t, inv.link(t), url.Values{"accept_terms": {"yes"}, "terms_version": {"3"}}, 404)

	ids := regexp.MustCompile(`(?m)^(\d+)\s+submitted\s+staff\s+ann@example.com`).FindStringSubmatch(in.mailca("enrolments", "--dir", in.dir, "--state", "submitted"))
	if ids == nil {
		t.Fatalf("ann's application is not listed as submitted")
	}
	in.mailca("approve", "--dir", in.dir, ids[1])
	act := in.mailTo("ann@example.com", "approved").link(t)
	p12, pw := activateServer(t, act)
	key, leaf, chain, err := pkcs12.DecodeChain(p12, pw)
	if err != nil || key == nil || leaf.EmailAddresses[0] != "ann@example.com" {
		t.Fatalf("PKCS#12 from the page: %v %v", err, leaf)
	}
	// A second activation of the same link issues nothing.
	post(t, act, url.Values{"mode": {"server"}}, 404)
	root, issuing := roots(t, in)
	id := clients.Identity{Email: "ann@example.com", P12: p12, Password: pw, Root: root, Chain: issuing}
	clients.GoVerify(t, leaf, id)
	clients.OpenSSLSignVerify(t, id)
	if len(chain) < 1 {
		t.Errorf("PKCS#12 carries no chain")
	}
	issued := in.mailTo("ann@example.com", "has been issued")
	if len(issued.attachments) == 0 {
		t.Errorf("the issued email carries no certificate")
	}
	for name, b := range issued.attachments {
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("attachment %s holds a private key", name)
		}
	}

	// Ben: a CSR made with OpenSSL.
	submitForm(t, in.mailTo("ben@example.com", "invitation").link(t), "Ben", "Ode")
	ids = regexp.MustCompile(`(?m)^(\d+)\s+submitted\s+staff\s+ben@example.com`).FindStringSubmatch(in.mailca("enrolments", "--dir", in.dir))
	in.mailca("approve", "--dir", in.dir, ids[1])
	act = in.mailTo("ben@example.com", "approved").link(t)
	openssl := clients.RequireTool(t, "openssl")
	tmp := t.TempDir()
	keyPath, csrPath := filepath.Join(tmp, "k.pem"), filepath.Join(tmp, "r.csr")
	if out, err := exec.Command(openssl, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", csrPath, "-subj", "/CN=someone-else@example.com").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	csr, _ := os.ReadFile(csrPath)
	body := post(t, act, url.Values{"mode": {"csr"}, "csr": {string(csr)}}, 200)
	m := certRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no certificate on the page:\n%s", body)
	}
	certPath := filepath.Join(tmp, "c.pem")
	os.WriteFile(certPath, []byte(html.UnescapeString(m[1])), 0o600)
	chainPath := filepath.Join(tmp, "chain.pem")
	os.WriteFile(chainPath, []byte(in.mailca("ca", "chain", "--dir", in.dir)), 0o600)
	rootPath := filepath.Join(tmp, "root.pem")
	os.WriteFile(rootPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o600)
	msg := filepath.Join(tmp, "m.txt")
	os.WriteFile(msg, []byte("hello from ben\n"), 0o600)
	signed := filepath.Join(tmp, "s.eml")
	for _, args := range [][]string{
		{"cms", "-sign", "-in", msg, "-signer", certPath, "-inkey", keyPath, "-certfile", chainPath, "-out", signed},
		{"cms", "-verify", "-in", signed, "-CAfile", rootPath, "-purpose", "smimesign", "-out", os.DevNull},
	} {
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", args[1], err, out)
		}
	}

	in.stop()
	checkNoSecretsLogged(t, in, []string{pw, tokenOf(act), tokenOf(inv.link(t))})
	checkUniqueDelivery(t, in.sink)
}

func tokenOf(link string) string { return link[strings.LastIndex(link, "/")+1:] }

// checkNoSecretsLogged fails when a token or password appears in the
// process log of mailca serve.
func checkNoSecretsLogged(t *testing.T, in *instance, secrets []string) {
	t.Helper()
	logs := in.logs.String()
	if !strings.Contains(logs, "http request") {
		t.Fatalf("the serve log has no request lines; the check would prove nothing:\n%s", logs)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the serve log contains a secret (%.6s...)", s)
		}
	}
}

// checkUniqueDelivery fails when a Message-ID arrived twice.
func checkUniqueDelivery(t *testing.T, sink *smtpsink.Server) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range sink.Messages() {
		m, err := r.Parse()
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Header.Get("Message-Id")]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("message %s delivered %d times", id, n)
		}
	}
}

// TestOneStage runs a pre-approved policy: the user activates right after
// the form, with no approver.
func TestOneStage(t *testing.T) {
	in := newInstance(t)
	policy := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(policy, []byte(`{"name":"onestage","channels":{"invitation":true},"approval":{"mode":"pre-approved"},
		"key_modes":["server"],"profile":"mailbox-multipurpose","terms":{"version":"1","text":"ok"},"p12_format":"modern"}`), 0o600)
	in.mailca("policy", "import", "--dir", in.dir, policy)
	in.start()
	in.mailca("invite", "--dir", in.dir, "--policy", "onestage", "--email", "cat@example.com")
	body := submitForm(t, in.mailTo("cat@example.com", "invitation").link(t), "", "")
	if !strings.Contains(body, "activation") && !strings.Contains(body, "mailbox") {
		t.Errorf("submitted page does not say what comes next:\n%s", body)
	}
	p12, pw := activateServer(t, in.mailTo("cat@example.com", "approved").link(t))
	if _, leaf, _, err := pkcs12.DecodeChain(p12, pw); err != nil || leaf.EmailAddresses[0] != "cat@example.com" {
		t.Fatalf("PKCS#12: %v", err)
	}
	in.stop()
}

// TestReferralAndOpen enrols through a signed referral link and through
// open self-enrolment with email verification.
func TestReferralAndOpen(t *testing.T) {
	in := newInstance(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	s64 := base64.RawURLEncoding.EncodeToString(secret)
	policy := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(policy, []byte(`name: portal
channels: {referral: true, open: true}
allowed_domains: [example.com]
approval: {mode: automatic}
key_modes: [server, csr]
terms: {version: "1", text: "ok"}
referral_keys: [{id: portal, secret: `+s64+`}]
`), 0o600)
	in.mailca("policy", "import", "--dir", in.dir, policy)
	in.start()

	now := time.Now().Unix()
	claims := fmt.Sprintf(`{"email":"dan@example.com","given_name":"Dan","policy":"portal","iat":%d,"exp":%d,"jti":"e2e-1"}`, now, now+600)
	tok := signHS256(t, `{"alg":"HS256","typ":"JWT","kid":"portal"}`, claims, secret)
	body := page(t, in.base+"/r?t="+tok, 200)
	if !strings.Contains(body, "dan@example.com") {
		t.Fatalf("referral form does not show the mailbox:\n%s", body)
	}
	post(t, in.base+"/r", url.Values{"t": {tok}, "f_given_name": {"Dan"}, "terms_version": {"1"}, "accept_terms": {"yes"}}, 200)
	// Replay and tampering are refused.
	post(t, in.base+"/r", url.Values{"t": {tok}, "terms_version": {"1"}, "accept_terms": {"yes"}}, 409)
	page(t, in.base+"/r?t="+tok[:len(tok)-2]+"xx", 404)
	p12, pw := activateServer(t, in.mailTo("dan@example.com", "approved").link(t))
	if _, _, _, err := pkcs12.DecodeChain(p12, pw); err != nil {
		t.Fatal(err)
	}

	// Open self-enrolment.
	page(t, in.base+"/enrol/portal", 200)
	post(t, in.base+"/enrol/portal", url.Values{"email": {"eve@example.com"}}, 200)
	link := in.mailTo("eve@example.com", "").link(t)
	submitForm(t, link, "Eve", "")
	p12, pw = activateServer(t, in.mailTo("eve@example.com", "approved").link(t))
	if _, _, _, err := pkcs12.DecodeChain(p12, pw); err != nil {
		t.Fatal(err)
	}
	in.stop()
}

func signHS256(t *testing.T, header, payload string, secret []byte) string {
	t.Helper()
	// Build the JWS by hand, as a referring site in another language would.
	h := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return h + "." + base64.RawURLEncoding.EncodeToString(hmacSHA256(secret, []byte(h)))
}

// TestConcurrentActivationOverHTTP sends many activations of one link at
// once through the server: exactly one certificate.
func TestConcurrentActivationOverHTTP(t *testing.T) {
	in := newInstance(t)
	policy := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(policy, []byte(`{"name":"auto","channels":{"invitation":true},"approval":{"mode":"automatic"},"key_modes":["server","csr"],"terms":{"version":"1","text":"ok"}}`), 0o600)
	in.mailca("policy", "import", "--dir", in.dir, policy)
	in.start()
	in.mailca("invite", "--dir", in.dir, "--policy", "auto", "--email", "fred@example.com")
	submitForm(t, in.mailTo("fred@example.com", "invitation").link(t), "Fred", "")
	act := in.mailTo("fred@example.com", "approved").link(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	codes := make(chan int, 50)
	for range 50 {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", act, strings.NewReader(url.Values{"mode": {"csr"}, "csr": {csr}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	got := map[int]int{}
	for range 50 {
		got[<-codes]++
	}
	if got[200] != 1 {
		t.Errorf("status codes %v: want exactly one 200", got)
	}
	list := in.mailca("enrolments", "--dir", in.dir, "--state", "issued")
	if n := strings.Count(list, "fred@example.com"); n != 1 {
		t.Errorf("%d issued enrolments for fred", n)
	}
	in.stop()
}

// TestCrashDuringImportAndDelivery kills mailca in the middle of a batch
// import and in the middle of delivering its emails: after restarting, no
// invitation is lost or duplicated and no email arrives twice.
func TestCrashDuringImportAndDelivery(t *testing.T) {
	in := newInstance(t, smtpsink.WithDelay(2*time.Millisecond))
	const rows = 3000
	var b strings.Builder
	b.WriteString("email,given name\n")
	for i := range rows {
		fmt.Fprintf(&b, "user%05d@example.com,User%d\n", i, i)
	}
	csvPath := filepath.Join(t.TempDir(), "big.csv")
	os.WriteFile(csvPath, []byte(b.String()), 0o600)

	// 1. Kill the import part-way.
	cmd := exec.Command(mailcaBin, "invite", "--dir", in.dir, csvPath)
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := in.countEnrolments()
	t.Logf("%d of %d rows invited before the kill", before, rows)
	// The report was stored with the invitations, chunk by chunk: it
	// holds exactly the lines whose outcome committed.
	if n := in.countReportLines(); n != before {
		t.Errorf("the killed import's report has %d lines, want %d (the invited rows)", n, before)
	}
	// 2. The same file again invites exactly the rest.
	report := in.mailca("invite", "--dir", in.dir, csvPath)
	invited, refused := strings.Count(report, ",invited,"), strings.Count(report, "already invited or active")
	if invited+refused != rows || invited != rows-before {
		t.Errorf("second import: %d invited, %d already invited; want %d and %d", invited, refused, rows-before, before)
	}
	if n := in.countEnrolments(); n != rows {
		t.Errorf("%d enrolments, want %d", n, rows)
	}

	// 3. Deliver, kill the server mid-delivery, restart, deliver the rest.
	in.start()
	deadline := time.Now().Add(30 * time.Second)
	for in.sink.Count() < rows/5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	in.kill()
	t.Logf("%d emails delivered before the kill", in.sink.Count())
	in.start()
	in.sink.WaitFor(t, rows, 2*time.Minute)
	time.Sleep(500 * time.Millisecond) // let any duplicate arrive
	in.stop()
	// SMTP has no way to make delivery and our record of it one atomic
	// step: a message the server accepted in the instant before the kill,
	// before mailca recorded it, goes again after the restart, with the
	// same Message-ID, by which receiving systems recognise it. At most one
	// message per SMTP connection can be caught in that instant.
	seen := map[string]int{}
	for _, r := range in.sink.Messages() {
		m, _ := r.Parse()
		seen[m.Header.Get("Message-Id")]++
	}
	repeated := 0
	for _, n := range seen {
		repeated += n - 1
	}
	t.Logf("%d deliveries repeated after the kill", repeated)
	if len(seen) != rows {
		t.Errorf("%d distinct emails, want %d: an invitation was lost", len(seen), rows)
	}
	if repeated > smtpConnections {
		t.Errorf("%d deliveries repeated; at most %d (one per SMTP connection in flight at the kill) can be", repeated, smtpConnections)
	}
}

// smtpConnections is the default of [mail] connections, which the data
// directories of these tests keep.
const smtpConnections = 2

// countReportLines counts the stored report lines of every batch.
func (in *instance) countReportLines() int {
	in.t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(in.dir, "mailca.db"))
	if err != nil {
		in.t.Fatal(err)
	}
	defer db.Close()
	n := 0
	for _, b := range mustRecentBatches(in.t, db) {
		if err := db.ScanBatchRows(context.Background(), b.ID, func(store.BatchRow) error { n++; return nil }); err != nil {
			in.t.Fatal(err)
		}
	}
	return n
}

func mustRecentBatches(t *testing.T, db *sqlite.DB) []*enrol.Batch {
	t.Helper()
	bs, err := db.RecentBatches(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// countEnrolments counts the enrolments in the database, whatever their state.
func (in *instance) countEnrolments() int {
	in.t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(in.dir, "mailca.db"))
	if err != nil {
		in.t.Fatal(err)
	}
	defer db.Close()
	counts, err := db.CountEnrolments(context.Background())
	if err != nil {
		in.t.Fatal(err)
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}
