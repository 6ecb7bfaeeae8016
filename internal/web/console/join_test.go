package console_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/auth"
)

var (
	secretRe = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	qrRe     = regexp.MustCompile(`<img id="totp-qr" src="data:image/png;base64,([A-Za-z0-9/=]|&#43;)+"`) // html/template writes + as &#43;
	urlRe    = regexp.MustCompile(`name="totp_url" value="([^"]+)"`)
	sealedRe = regexp.MustCompile(`name="totp_secret" value="([^"]+)"`)
)

// joinForm opens a join page and returns its TOTP secret, the sealed form
// of it that the form carries back, and its key URL.
func joinForm(t *testing.T, e *env, path string) (secret, sealed, keyURL string) {
	t.Helper()
	res, body := e.get(path, "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200\n%s", path, res.StatusCode, excerpt(body))
	}
	if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("join page Referrer-Policy = %q, want no-referrer", got)
	}
	m := secretRe.FindStringSubmatch(body)
	if m == nil || !qrRe.MatchString(body) {
		t.Fatalf("join page lacks the secret as text or the QR code as a data: image:\n%s", body)
	}
	sm := sealedRe.FindStringSubmatch(body)
	if sm == nil || !strings.HasPrefix(sm[1], m[1]+".") {
		t.Fatalf("join page does not carry the sealed secret in the hidden totp_secret field")
	}
	u := urlRe.FindStringSubmatch(body)
	if u == nil {
		t.Fatalf("join page lacks totp_url")
	}
	return m[1], html.UnescapeString(sm[1]), html.UnescapeString(u[1])
}

func TestSetupAndJoin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// Before any account, the login page says how to begin.
	if _, body := e.get("/console/login", ""); !strings.Contains(body, "No account exists yet") {
		t.Errorf("login page before setup does not explain the setup link")
	}

	token, err := e.auth.SetupLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := "/console/join/" + token
	secret, sealed, keyURL := joinForm(t, e, path)

	// A secret of the person's own choosing (here one they know from
	// somewhere else, sent with its otpauth URL) is refused: the form
	// comes back with a new secret, and no account is made.
	const chosen = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	chosenURL := "otpauth://totp/mailca:ann@example.org?secret=" + chosen + "&issuer=mailca"
	res, body := e.post(path, "", url.Values{"email": {"ann@example.org"}, "name": {"Ann"}, "password": {password}, "password2": {password},
		"totp_secret": {chosen}, "totp_url": {chosenURL}, "code": {e.code(chosen)}})
	if m := secretRe.FindStringSubmatch(body); res.StatusCode != http.StatusBadRequest || m == nil || m[1] == chosen {
		t.Errorf("join with a chosen secret = %d, want 400 with a new secret\n%s", res.StatusCode, excerpt(body))
	}
	if n, _ := e.auth.NeedsSetup(ctx); !n {
		t.Fatalf("join with a chosen secret made an account")
	}

	// Errors show the form again with the same secret, naming the field.
	form := url.Values{"email": {"ann@example.org"}, "name": {"Ann"}, "password": {"short"}, "password2": {"short"},
		"totp_secret": {sealed}, "totp_url": {keyURL}, "code": {e.code(secret)}}
	res, body = e.post(path, "", form)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "at least 12 characters") {
		t.Errorf("join with a short password = %d, want 400 naming the password's rule\n%s", res.StatusCode, excerpt(body))
	}
	if m := secretRe.FindStringSubmatch(body); m == nil || m[1] != secret || !qrRe.MatchString(body) {
		t.Errorf("the form after an error lost the TOTP secret or its QR code")
	}
	if strings.Contains(body, "short") && strings.Contains(body, `value="short"`) {
		t.Errorf("the form after an error shows the password again")
	}
	form.Set("password", password)
	form.Set("password2", "a different good password")
	if res, body := e.post(path, "", form); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "the two passwords differ") {
		t.Errorf("join with differing passwords = %d, want 400", res.StatusCode)
	}
	form.Set("password2", password)
	form.Set("code", "000000")
	if res, body := e.post(path, "", form); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not the current code") {
		t.Errorf("join with a wrong code = %d, want 400 naming the code\n%s", res.StatusCode, excerpt(body))
	}

	// Success: the account exists, the link is spent, login works.
	form.Set("code", e.code(secret))
	res, _ = e.post(path, "", form)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login" {
		t.Fatalf("join = %d to %q, want 303 to /console/login", res.StatusCode, res.Header.Get("Location"))
	}
	a, err := e.auth.AccountByEmail(ctx, "ann@example.org")
	if err != nil || a.Role != auth.Administrator || a.Name != "Ann" {
		t.Fatalf("account after setup = %+v, %v; want administrator Ann", a, err)
	}
	if res, _ := e.get(path, ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("the setup link after use = %d, want 404", res.StatusCode)
	}
	e.secrets["ann@example.org"] = secret
	e.login("ann@example.org")

	// An invitation: the email is the invited one, whatever the form says.
	token, err = e.auth.InviteAccount(ctx, "console:ann@example.org", "bob@example.org", auth.Officer, []string{"staff"})
	if err != nil {
		t.Fatal(err)
	}
	path = "/console/join/" + token
	_, body = e.get(path, "")
	if !strings.Contains(body, "bob@example.org") || strings.Contains(body, `name="email"`) {
		t.Errorf("invitation page should name the invited address and have no email field")
	}
	secret, sealed, keyURL = joinForm(t, e, path)
	res, _ = e.post(path, "", url.Values{"email": {"mallory@example.org"}, "name": {"Bob"}, "password": {"a long and good secret"}, "password2": {"a long and good secret"},
		"totp_secret": {sealed}, "totp_url": {keyURL}, "code": {e.code(secret)}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("join by invitation = %d, want 303", res.StatusCode)
	}
	if b, err := e.auth.AccountByEmail(ctx, "bob@example.org"); err != nil || b.Role != auth.Officer {
		t.Errorf("invited account = %+v, %v; want officer bob", b, err)
	}
	if _, err := e.auth.AccountByEmail(ctx, "mallory@example.org"); err == nil {
		t.Errorf("the email typed on an invitation's form made an account")
	}

	// The request log names the route pattern, never the token.
	logs := e.logs.String()
	if strings.Contains(logs, token) || !strings.Contains(logs, "/console/join/{token}") {
		t.Errorf("request log: want the join route's pattern and no token:\n%s", logs)
	}
}
