package console_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"github.com/mailca/mailca/internal/outbox"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/ca"
)

// TestCertificates finds an issued certificate by serial (whole, with
// colons, or its beginning), mailbox and surname, shows and downloads it,
// and revokes it; an officer of another policy finds nothing.
func TestCertificates(t *testing.T) {
	e := newPagesEnv(t)
	a := e.issued("staff", "ann@example.org")
	e.issued("students", "sam@example.org")
	serial := ca.SerialHex(a.Cert.Cert.SerialNumber)
	var colons []string
	for i := 0; i < len(serial); i += 2 {
		colons = append(colons, serial[i:min(i+2, len(serial))])
	}
	for _, q := range []string{serial, strings.ToUpper(strings.Join(colons, ":")), serial[:10], "ann@", "Liddell"} {
		_, body := e.get("/console/certificates?"+url.Values{"q": {q}}.Encode(), e.admin)
		if !strings.Contains(body, `data-serial="`+serial+`"`) {
			t.Errorf("q=%q does not find the certificate:\n%s", q, body)
		}
		if q != "Liddell" && strings.Contains(body, "sam@example.org") {
			t.Errorf("q=%q finds the other certificate too", q)
		}
	}
	_, body := e.get("/console/certificates?q=sam%40", e.olga)
	if strings.Contains(body, "sam@example.org") {
		t.Errorf("officer of staff finds a students certificate")
	}
	res, _ := e.get("/console/certificates/"+ca.SerialHex(e.mustSerial("sam@example.org")), e.olga)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("officer of staff opens a students certificate: %d", res.StatusCode)
	}

	path := "/console/certificates/" + serial
	res, body = e.get(path, e.olga)
	wantStatus(t, "certificate", res, body, http.StatusOK)
	for _, want := range []string{"ann@example.org", `id="certificate-status">valid`, serial} {
		if !strings.Contains(body, want) {
			t.Errorf("certificate page lacks %q", want)
		}
	}
	res, body = e.get(path+"/cert.pem", e.olga)
	blk, _ := pem.Decode([]byte(body))
	if blk == nil {
		t.Fatalf("cert.pem is not PEM: %q", body)
	}
	if c, err := x509.ParseCertificate(blk.Bytes); err != nil || c.SerialNumber.Cmp(a.Cert.Cert.SerialNumber) != 0 {
		t.Errorf("cert.pem holds another certificate (%v)", err)
	}

	_, chain := e.get(path+"/chain.pem", e.olga)
	if !strings.HasPrefix(chain, body) || !strings.HasSuffix(chain, testChainPEM) {
		t.Errorf("chain.pem is not the certificate followed by the chain:\n%s", chain)
	}

	res, body = e.post(path+"/revoke", e.olga, url.Values{"reason": {"certificateHold"}})
	wantStatus(t, "revoke for a forbidden reason", res, body, http.StatusBadRequest)
	res, body = e.post(path+"/revoke", e.olga, url.Values{"reason": {"keyCompromise"}})
	wantStatus(t, "revoke", res, body, http.StatusSeeOther)
	_, body = e.get(path, e.olga)
	if !strings.Contains(body, `id="certificate-status">revoked`) || !strings.Contains(body, "keyCompromise") {
		t.Errorf("after revocation the page shows:\n%s", body)
	}
}

// mustSerial returns the serial of the certificate issued to mailbox.
func (e *pagesEnv) mustSerial(mailbox string) *big.Int {
	e.t.Helper()
	msgs, err := e.db.Messages(context.Background(), outbox.Filter{To: mailbox, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Template == "issued" {
			n, ok := new(big.Int).SetString(m.Data["Serial"], 16)
			if ok {
				return n
			}
		}
	}
	e.t.Fatalf("no certificate for %s", mailbox)
	return nil
}
