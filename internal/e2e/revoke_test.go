package e2e_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mailca/mailca/internal/testkit/clients"
)

// TestRevokeWhileServing revokes, from the command line, a certificate
// that a running mailca serve vouches for: its OCSP answer turns to revoked
// within seconds, the served CRL lists it soon after, and the subscriber
// is told by email.
func TestRevokeWhileServing(t *testing.T) {
	in := newInstance(t)
	openssl := clients.RequireTool(t, "openssl")
	tmp := t.TempDir()
	keyPath, csrPath := filepath.Join(tmp, "k.pem"), filepath.Join(tmp, "r.csr")
	if out, err := exec.Command(openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", csrPath, "-subj", "/CN=zoe").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	leafPEM := in.mailca("issue", "--dir", in.dir, "--email", "zoe@example.com", "--csr", csrPath)
	block, _ := pem.Decode([]byte(leafPEM))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	root, chain := roots(t, in)
	issuing := chain[0]
	in.start()

	ask := func() *ocsp.Response {
		t.Helper()
		req, err := ocsp.CreateRequest(leaf, issuing, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.Post(in.base+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		r, err := ocsp.ParseResponseForCert(body, leaf, issuing)
		if err != nil {
			t.Fatalf("OCSP response: %v", err)
		}
		return r
	}
	crlSerials := func() (int64, []string) {
		t.Helper()
		u, _ := url.Parse(leaf.CRLDistributionPoints[0])
		res, err := http.Get(in.base + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		crl, err := x509.ParseRevocationList(body)
		if err != nil || crl.CheckSignatureFrom(issuing) != nil {
			t.Fatalf("served CRL (status %d): %v", res.StatusCode, err)
		}
		var out []string
		for _, e := range crl.RevokedCertificateEntries {
			out = append(out, e.SerialNumber.Text(16))
		}
		return crl.Number.Int64(), out
	}
	if r := ask(); r.Status != ocsp.Good {
		t.Fatalf("before revocation: OCSP status %d, want good", r.Status)
	}
	if _, serials := crlSerials(); len(serials) != 0 {
		t.Fatalf("before revocation: CRL lists %v", serials)
	}

	out := in.mailca("revoke", "--dir", in.dir, "--serial", leaf.SerialNumber.Text(16), "--reason", "keyCompromise", "--as", "security")
	if !strings.Contains(out, "Revoked certificate") || !strings.Contains(out, "key is blocked") {
		t.Errorf("mailca revoke said:\n%s", out)
	}
	revokedAt := time.Now()
	for {
		if r := ask(); r.Status == ocsp.Revoked {
			if r.RevocationReason != ocsp.KeyCompromise {
				t.Errorf("OCSP reason %d, want keyCompromise", r.RevocationReason)
			}
			t.Logf("OCSP answered revoked %s after the revocation", time.Since(revokedAt).Round(time.Millisecond))
			break
		}
		if time.Since(revokedAt) > 5*time.Second {
			t.Fatalf("OCSP still answers good five seconds after the revocation; serve log:\n%s", in.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		if _, serials := crlSerials(); len(serials) == 1 && serials[0] == leaf.SerialNumber.Text(16) {
			t.Logf("the CRL listed it %s after the revocation", time.Since(revokedAt).Round(time.Millisecond))
			break
		}
		if time.Since(revokedAt) > 10*time.Second {
			t.Fatalf("the served CRL does not list the certificate ten seconds after the revocation; serve log:\n%s", in.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mail := in.mailTo("zoe@example.com", "revoked"); !strings.Contains(mail.text, leaf.SerialNumber.Text(16)) {
		t.Errorf("the revoked email lacks the serial:\n%s", mail.text)
	}
	if out := in.mailca("revoke", "--dir", in.dir, "--serial", leaf.SerialNumber.Text(16), "--reason", "superseded"); !strings.Contains(out, "already revoked") {
		t.Errorf("second revoke said:\n%s", out)
	}

	// The relying party's view with openssl, against the running server.
	dir := t.TempDir()
	write := func(name string, c *x509.Certificate) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o600)
		return p
	}
	leafFile := write("leaf.pem", leaf)
	ocspOut, err := exec.Command(openssl, "ocsp", "-issuer", write("issuing.pem", issuing), "-CAfile", write("root.pem", root),
		"-cert", leafFile, "-url", in.base+"/ocsp").CombinedOutput()
	if err != nil || !strings.Contains(string(ocspOut), "Response verify OK") || !strings.Contains(string(ocspOut), leafFile+": revoked") ||
		!strings.Contains(string(ocspOut), "Reason: keyCompromise") {
		t.Errorf("openssl ocsp: %v\n%s", err, ocspOut)
	}

	// mailca crl makes a new CRL beside the server; the server serves it.
	before, _ := crlSerials()
	crlFile := filepath.Join(dir, "crl.der")
	in.mailca("crl", "--dir", in.dir, "--out", crlFile)
	der, err := os.ReadFile(crlFile)
	if err != nil {
		t.Fatal(err)
	}
	made, err := x509.ParseRevocationList(der)
	if err != nil || made.Number.Int64() <= before {
		t.Fatalf("mailca crl wrote CRL %v (%v), want one after %d", made.Number, err, before)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := crlSerials(); n >= made.Number.Int64() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still serves CRL %d, not the newer %d", before, made.Number)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
