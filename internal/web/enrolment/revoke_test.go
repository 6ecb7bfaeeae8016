package enrolment_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/outbox"
)

// TestSelfServiceRevocation follows the revocation link of the "issued"
// email: the page changes nothing, a reason is required, the subscriber may
// not pick the CA's reasons, and revoking twice is harmless.
func TestSelfServiceRevocation(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	_, token := e.invite("auto", "grace@example.com")
	e.post("/e/"+token, validForm())
	act := "/a/" + e.token("grace@example.com", "/a/")
	pemCSR, _ := newCSR(t)
	res, body := e.post(act, url.Values{"mode": {"csr"}, "csr": {string(pemCSR)}})
	wantStatus(t, "activate", res, body, http.StatusOK)

	msgs, err := e.db.Messages(ctx, outbox.Filter{To: "grace@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var link string
	for _, m := range msgs {
		if m.Template == "issued" {
			link = m.Data["RevocationLink"]
		}
	}
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(u.Path, "/revoke/") {
		t.Fatalf("issued email revocation link %q", link)
	}
	page := u.Path

	res, body = e.get(page)
	wantStatus(t, "GET revocation page", res, body, http.StatusOK)
	wantContains(t, "GET revocation page", body, "grace@example.com", `name="reason" value="keyCompromise"`)
	if st := certStatus(t, e, body); st {
		t.Fatalf("the GET revoked the certificate")
	}

	res, body = e.post(page, url.Values{})
	wantStatus(t, "POST without reason", res, body, http.StatusBadRequest)
	wantContains(t, "POST without reason", body, `id="reason-error"`)

	res, body = e.post(page, url.Values{"reason": {"privilegeWithdrawn"}})
	wantStatus(t, "POST with the CA's reason", res, body, http.StatusBadRequest)

	res, body = e.post(page, url.Values{"reason": {"keyCompromise"}})
	wantStatus(t, "POST keyCompromise", res, body, http.StatusOK)
	wantContains(t, "POST keyCompromise", body, "Certificate revoked")
	if !certStatus(t, e, body) {
		t.Errorf("certificate not revoked after the POST")
	}

	res, body = e.post(page, url.Values{"reason": {"unspecified"}})
	wantStatus(t, "second POST", res, body, http.StatusOK)
	wantContains(t, "second POST", body, "Already revoked")

	res, body = e.get("/revoke/" + strings.Repeat("A", 43))
	wantStatus(t, "unknown revocation link", res, body, http.StatusNotFound)
}

// certStatus reports whether the certificate whose serial the page shows
// is revoked.
func certStatus(t *testing.T, e *env, body string) bool {
	t.Helper()
	serial := find(t, body, `<code>([0-9a-f]+)</code>`)
	st, err := e.db.CertificateStatus(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	return st.Revoked()
}
