package enrolment_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// TestInvitationToPKCS12 walks an invitation from the form to a
// server-generated key, and checks that the activation works once.
func TestInvitationToPKCS12(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	en, token := e.invite("test", "alice@example.com")
	formURL := "/e/" + token

	res, body := e.get(formURL)
	wantStatus(t, "GET form", res, body, http.StatusOK)
	wantContains(t, "GET form", body,
		`value="alice@example.com" readonly`,
		`name="f_given_name" type="text" value="Alice"`,
		`id="f-employee_id" type="text" value="E-1234" readonly`,
		`name="terms_version" value="1"`,
		`name="accept_terms" value="yes" required`,
		"I will protect the private key",
	)
	if strings.Contains(body, `name="f_employee_id"`) {
		t.Errorf("GET form: the read-only field is an input the form sends")
	}

	// A missing required field: the message is next to the field and
	// tied to it for screen readers; nothing is spent.
	form := validForm()
	form.Del("f_department")
	res, body = e.post(formURL, form)
	wantStatus(t, "POST without department", res, body, http.StatusBadRequest)
	wantContains(t, "POST without department", body,
		`<p class="error-message" id="f-department-error"><span class="visually-hidden">Error: </span>Department is required.</p>`,
		`aria-describedby="f-department-hint f-department-error" aria-invalid="true"`,
		`<a href="#f-department">Department is required.</a>`,
		`<title>Error: `,
		`value="Liddell"`, // what the user typed stays
	)

	// Terms not accepted.
	form = validForm()
	form.Del("accept_terms")
	res, body = e.post(formURL, form)
	wantStatus(t, "POST without terms", res, body, http.StatusBadRequest)
	wantContains(t, "POST without terms", body, `id="terms-error"`, "You must accept the terms")

	res, body = e.post(formURL, validForm())
	wantStatus(t, "POST valid form", res, body, http.StatusOK)
	wantContains(t, "POST valid form", body, "Thank you, Alice", "checks each application")

	// The form link is spent.
	res, body = e.get(formURL)
	wantStatus(t, "GET spent form", res, body, http.StatusNotFound)
	wantContains(t, "GET spent form", body, "This link is not valid")

	if _, err := e.svc.Approve(ctx, "admin:approver", en.ID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	actURL := "/a/" + e.token("alice@example.com", "/a/")

	res, body = e.get(actURL)
	wantStatus(t, "GET activation", res, body, http.StatusOK)
	wantContains(t, "GET activation", body, `id="mode-server" name="mode" value="server"`, `id="mode-csr" name="mode" value="csr"`, `enctype="multipart/form-data"`)
	if n := e.certCount(); n != 0 {
		t.Fatalf("after GET activation: %d certificates, want 0", n)
	}

	res, body = e.postMultipart(actURL, map[string]string{"mode": "server"}, nil)
	wantStatus(t, "POST activation", res, body, http.StatusOK)
	wantContains(t, "POST activation", body, "only copy of your private key", `src="/static/copy.js"`, `data-copy="p12-password"`, "Thunderbird", "Keychain Access", "Trust Center")
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST activation: Cache-Control %q, want no-store", cc)
	}
	password := find(t, body, `id="p12-password"[^>]*>([^<]+)<`)
	filename := find(t, body, `download="([^"]+\.p12)"`)
	if filename != "alice@example.com.p12" {
		t.Errorf("download name %q, want alice@example.com.p12", filename)
	}
	b64 := find(t, body, `href="data:application/x-pkcs12;base64,([^"]+)"`)
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("data: URL is not base64: %v", err)
	}
	key, cert, chain, err := pkcs12.DecodeChain(der, password)
	if err != nil {
		t.Fatalf("pkcs12.DecodeChain with the shown password: %v", err)
	}
	if key == nil || !slices.Contains(cert.EmailAddresses, "alice@example.com") || len(chain) == 0 {
		t.Errorf("PKCS#12: key %T, cert for %v, chain of %d; want a key, alice@example.com, a chain", key, cert.EmailAddresses, len(chain))
	}
	if n := e.certCount(); n != 1 {
		t.Fatalf("after activation: %d certificates, want 1", n)
	}

	// A second POST of the same activation issues nothing.
	res, body = e.postMultipart(actURL, map[string]string{"mode": "server"}, nil)
	wantStatus(t, "second POST activation", res, body, http.StatusNotFound)
	wantContains(t, "second POST activation", body, "This link does not work", "This link is not valid: it may have expired or been used already")
	if strings.Contains(body, password) {
		t.Errorf("second POST shows the password again")
	}
	if n := e.certCount(); n != 1 {
		t.Errorf("after second activation: %d certificates, want 1", n)
	}
	if strings.Contains(e.logs.String(), password) {
		t.Errorf("the log holds the PKCS#12 password")
	}
}

func newCSR(t *testing.T) (pemCSR, der []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), der
}

// TestActivationWithCSR activates with a certificate request: a bad one
// is refused next to the field and leaves the link usable.
func TestActivationWithCSR(t *testing.T) {
	e := newEnv(t, "")
	en, token := e.invite("auto", "bob@example.com")
	res, body := e.post("/e/"+token, validForm())
	wantStatus(t, "POST form", res, body, http.StatusOK)
	wantContains(t, "POST form (automatic approval)", body, "Your application is approved", "within 24 hours")
	if got, _ := e.svc.Enrolment(context.Background(), en.ID); got.State != enrol.Approved {
		t.Fatalf("state after automatic approval: %s, want approved", got.State)
	}
	actURL := "/a/" + e.token("bob@example.com", "/a/")

	res, body = e.postMultipart(actURL, map[string]string{"mode": "csr"}, nil)
	wantStatus(t, "POST csr mode without CSR", res, body, http.StatusBadRequest)
	wantContains(t, "POST csr mode without CSR", body, `id="csr-error"`, "Paste your certificate signing request")

	res, body = e.postMultipart(actURL, map[string]string{"mode": "csr", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"}, nil)
	wantStatus(t, "POST bad CSR", res, body, http.StatusBadRequest)
	wantContains(t, "POST bad CSR", body, `id="csr-error"`, "Invalid certificate signing request", `aria-invalid="true"`, "BEGIN CERTIFICATE REQUEST")
	if n := e.certCount(); n != 0 {
		t.Fatalf("after bad CSR: %d certificates, want 0", n)
	}

	_, der := newCSR(t)
	res, body = e.postMultipart(actURL, map[string]string{"mode": "csr"}, der) // DER, as a file
	wantStatus(t, "POST CSR file", res, body, http.StatusOK)
	wantContains(t, "POST CSR file", body, "-----BEGIN CERTIFICATE-----", `download="bob@example.com.pem"`, `href="data:application/x-pem-file;base64,`, `download="chain.pem"`, `href="/ca/chain.pem"`)
	if strings.Contains(body, "x-pkcs12") {
		t.Errorf("CSR activation offers a PKCS#12")
	}
	certPEM := find(t, body, `id="cert-pem">([^<]+)<`)
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatalf("certificate PEM does not decode: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !slices.Contains(cert.EmailAddresses, "bob@example.com") {
		t.Fatalf("issued certificate: %v, names %v; want bob@example.com", err, cert.EmailAddresses)
	}

	// The chain download.
	res, body = e.get("/ca/chain.pem")
	wantStatus(t, "GET chain", res, body, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "application/x-pem-file" || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Errorf("GET /ca/chain.pem: %s, %q", ct, body)
	}
}

// TestActivationPastedCSRAndLimits pastes a PEM request and checks the
// body limit.
func TestActivationPastedCSRAndLimits(t *testing.T) {
	e := newEnv(t, "")
	_, token := e.invite("auto", "erin@example.com")
	e.post("/e/"+token, validForm())
	actURL := "/a/" + e.token("erin@example.com", "/a/")

	res, body := e.postMultipart(actURL, map[string]string{"mode": "csr", "csr": strings.Repeat("A", 300<<10)}, nil)
	wantStatus(t, "POST huge CSR", res, body, http.StatusRequestEntityTooLarge)

	res, body = e.postMultipart(actURL, map[string]string{"mode": "nonsense"}, nil)
	wantStatus(t, "POST unknown mode", res, body, http.StatusBadRequest)
	wantContains(t, "POST unknown mode", body, "Choose how to get your key")

	pemCSR, _ := newCSR(t)
	res, body = e.post(actURL, url.Values{"mode": {"csr"}, "csr": {string(pemCSR)}}) // URL-encoded works too
	wantStatus(t, "POST pasted CSR", res, body, http.StatusOK)
	wantContains(t, "POST pasted CSR", body, "-----BEGIN CERTIFICATE-----")

	// The same key again, under another enrolment: refused, link kept.
	_, token = e.invite("auto", "frank@example.com")
	e.post("/e/"+token, validForm())
	actURL = "/a/" + e.token("frank@example.com", "/a/")
	res, body = e.post(actURL, url.Values{"mode": {"csr"}, "csr": {string(pemCSR)}})
	wantStatus(t, "POST reused key", res, body, http.StatusConflict)
	wantContains(t, "POST reused key", body, "Key already used", `id="csr-error"`)
	res, body = e.get(actURL)
	wantStatus(t, "GET after refused key", res, body, http.StatusOK)
}

func TestReferral(t *testing.T) {
	e := newEnv(t, "")
	now := time.Now()
	sign := func(jti string) string {
		t.Helper()
		tok, err := enrol.SignReferral(enrol.Referral{
			Email: "carol@example.com", GivenName: "Carol", Surname: "Cole", Policy: "ref",
			IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix(), ID: jti,
		}, e.key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tok := sign("jti-1")

	res, body := e.get("/r?t=" + url.QueryEscape(tok))
	wantStatus(t, "GET referral", res, body, http.StatusOK)
	wantContains(t, "GET referral", body, `value="carol@example.com" readonly`, `value="Carol"`, `action="/r"`, `name="t" value="`+tok+`"`)

	// Tampered: the last signature character changed.
	bad := tok[:len(tok)-1] + map[bool]string{true: "A", false: "B"}[!strings.HasSuffix(tok, "A")]
	res, body = e.get("/r?t=" + url.QueryEscape(bad))
	wantStatus(t, "GET tampered referral", res, body, http.StatusNotFound)
	wantContains(t, "GET tampered referral", body, "This referral link is invalid or has expired")
	form := validForm()
	form.Set("t", bad)
	res, body = e.post("/r", form)
	wantStatus(t, "POST tampered referral", res, body, http.StatusNotFound)

	// Form problems spend nothing.
	form = validForm()
	form.Set("t", tok)
	form.Set("f_given_name", "Carol")
	form.Del("f_department")
	res, body = e.post("/r", form)
	wantStatus(t, "POST referral without department", res, body, http.StatusBadRequest)
	wantContains(t, "POST referral without department", body, `id="f-department-error"`, `name="t" value="`+tok+`"`)

	form.Set("f_department", "Sales")
	res, body = e.post("/r", form)
	wantStatus(t, "POST referral", res, body, http.StatusOK)
	wantContains(t, "POST referral", body, "Thank you, Carol")

	res, body = e.post("/r", form)
	wantStatus(t, "POST reused referral", res, body, http.StatusConflict)
	wantContains(t, "POST reused referral", body, "This referral link was used already")
	list, _ := e.svc.Enrolments(context.Background(), enrol.Filter{Mailbox: "carol@"})
	if len(list) != 1 {
		t.Errorf("enrolments for carol: %d, want 1", len(list))
	}
}

func TestOpenSelfEnrolment(t *testing.T) {
	e := newEnv(t, "")
	res, body := e.get("/enrol/open")
	wantStatus(t, "GET /enrol/open", res, body, http.StatusOK)
	wantContains(t, "GET /enrol/open", body, `name="email" type="email"`, `action="/enrol/open"`)

	for _, name := range []string{"test", "nonexistent", "Bad%20Name"} {
		res, body = e.get("/enrol/" + name)
		wantStatus(t, "GET /enrol/"+name, res, body, http.StatusNotFound)
		wantContains(t, "GET /enrol/"+name, body, "Self-enrolment is not available here.")
		res, body = e.post("/enrol/"+name, url.Values{"email": {"x@example.com"}})
		wantStatus(t, "POST /enrol/"+name, res, body, http.StatusNotFound)
	}

	// The answer is the same for a new address and one enrolled already.
	res, first := e.post("/enrol/open", url.Values{"email": {"dave@example.com"}})
	wantStatus(t, "POST new address", res, first, http.StatusOK)
	wantContains(t, "POST new address", first, "may enrol, we have sent it a link")
	res, again := e.post("/enrol/open", url.Values{"email": {"dave@example.com"}})
	wantStatus(t, "POST same address", res, again, http.StatusOK)
	if first != again {
		t.Errorf("the pages for a new and an enrolled address differ:\n%s\n---\n%s", first, again)
	}
	msgs, _ := e.db.Messages(context.Background(), outboxTo("dave@example.com"))
	if len(msgs) != 1 {
		t.Errorf("verification emails to dave: %d, want 1", len(msgs))
	}

	// The verification link opens the form.
	res, body = e.get("/e/" + e.token("dave@example.com", "/e/"))
	wantStatus(t, "GET verification link", res, body, http.StatusOK)
	wantContains(t, "GET verification link", body, `value="dave@example.com" readonly`)

	for _, c := range []struct{ email, want string }{
		{"", "Enter your email address."},
		{"not an address", "Enter one email address"},
		{"eve@example.org", "Addresses at example.org cannot enrol here."},
	} {
		res, body = e.post("/enrol/open", url.Values{"email": {c.email}})
		wantStatus(t, "POST "+c.email, res, body, http.StatusBadRequest)
		wantContains(t, "POST "+c.email, body, c.want, `id="email-error"`, `aria-describedby="email-error"`)
	}
}
