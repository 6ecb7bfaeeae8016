package e2e_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestConsoleOverTLS runs mailca serve with --tls-cert and --tls-key and
// goes through the console's first run over HTTPS: the setup link printed
// at start, joining with a TOTP secret, logging in (a __Host- cookie with
// Secure, and HSTS), and a test message from the mail page that the SMTP
// server receives.
func TestConsoleOverTLS(t *testing.T) {
	in := newInstance(t)
	certFile, keyFile, pool := selfSigned(t, in.dir)
	base := "https://" + in.addr

	logs := &lockedBuffer{}
	serve := exec.Command(mailcaBin, "serve", "--dir", in.dir, "--addr", in.addr, "--tls-cert", certFile, "--tls-key", keyFile)
	serve.Stdout, serve.Stderr = logs, logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	})
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := client.Get(base + "/console/login")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				if !strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") {
					t.Errorf("console over TLS: no Strict-Transport-Security")
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailca serve over TLS did not come up (%v):\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Plain HTTP on the same port is refused.
	if res, err := http.Get("http://" + in.addr + "/console/login"); err == nil && res.StatusCode == http.StatusOK {
		t.Errorf("plain HTTP answered 200 on the TLS port")
	}

	// Standard output is a pipe, not a terminal: the link is in the file
	// serve names, never in the output.
	file := regexp.MustCompile(`is in (\S+setup-link\.txt)\n`).FindStringSubmatch(logs.String())
	if file == nil || strings.Contains(logs.String(), "/console/join/") {
		t.Fatalf("serve printed no setup link file, or the link itself:\n%s", logs)
	}
	link, err := os.ReadFile(file[1])
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`/console/join/([A-Za-z0-9_-]+)`).FindStringSubmatch(string(link))
	if m == nil {
		t.Fatalf("setup link file holds %q", link)
	}
	joinURL := base + "/console/join/" + m[1]
	body := tlsGet(t, client, joinURL)
	secret := regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`).FindStringSubmatch(body)
	keyURL := regexp.MustCompile(`name="totp_url" value="([^"]+)"`).FindStringSubmatch(body)
	sealed := regexp.MustCompile(`name="totp_secret" value="([^"]+)"`).FindStringSubmatch(body)
	if secret == nil || keyURL == nil || sealed == nil {
		t.Fatalf("join page lacks the TOTP secret:\n%s", body)
	}
	code, _ := totp.GenerateCode(secret[1], time.Now())
	res := tlsPost(t, client, joinURL, url.Values{"email": {"ann@example.org"}, "name": {"Ann"}, "password": {"correct horse battery"},
		"password2": {"correct horse battery"}, "totp_secret": {html.UnescapeString(sealed[1])}, "totp_url": {html.UnescapeString(keyURL[1])}, "code": {code}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("join = %d, want 303", res.StatusCode)
	}
	if _, err := os.Stat(file[1]); !os.IsNotExist(err) {
		t.Errorf("the setup link file after the first account: %v, want it removed", err)
	}
	// The join spent this time step's code: log in with the next one.
	time.Sleep(time.Until(time.Now().Truncate(30 * time.Second).Add(30*time.Second + 100*time.Millisecond)))
	code, _ = totp.GenerateCode(secret[1], time.Now())
	res = tlsPost(t, client, base+"/console/login", url.Values{"email": {"ann@example.org"}, "password": {"correct horse battery"}, "code": {code}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login = %d, want 303", res.StatusCode)
	}
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Host-mailca_session" {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.Path != "/" {
		t.Fatalf("session cookie over TLS = %+v, want __Host-mailca_session, Secure, HttpOnly, Path=/", session)
	}
	if body := tlsGet(t, client, base+"/console/"); !strings.Contains(body, "Enrolments by state") {
		t.Fatalf("dashboard after login:\n%s", body)
	}

	res = tlsPost(t, client, base+"/console/mail/test", url.Values{"to": {"check@example.org"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("send test message = %d, want 303", res.StatusCode)
	}
	var got *email
	for deadline := time.Now().Add(20 * time.Second); got == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, r := range in.sink.Messages() {
			if e := decodeMail(t, r); strings.EqualFold(e.to, "check@example.org") && strings.Contains(e.subject, "Test message") {
				got = &e
			}
		}
	}
	if got == nil {
		t.Fatalf("no test message arrived; serve log:\n%s", logs)
	}
	if !strings.Contains(got.text, "console:ann@example.org") {
		t.Errorf("test message text lacks who sent it:\n%s", got.text)
	}
	if strings.Contains(logs.String(), "correct horse battery") {
		t.Errorf("the serve log holds the password")
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tlsGet(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d\n%s", u, res.StatusCode, b)
	}
	return string(b)
}

func tlsPost(t *testing.T, c *http.Client, u string, form url.Values) *http.Response {
	t.Helper()
	res, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls-cert.pem"), filepath.Join(dir, "tls-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
