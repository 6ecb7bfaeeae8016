package pki_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/testkit/clients"
)

func writePEM(t *testing.T, dir, name, typ string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// get fetches path from the server.
func (s *pkiServer) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	// No redirects: an OCSP client follows none.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func (s *pkiServer) post(t *testing.T, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/ocsp", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	return do(t, req)
}

// TestOpenSSLOCSP has openssl ask the server about a good, a revoked and
// an unknown certificate, as a mail client would, trusting only the root.
func TestOpenSSLOCSP(t *testing.T) {
	openssl := clients.RequireTool(t, "openssl")
	s := newPKIServer(t)
	good := s.issue(t)
	revoked := s.issue(t)
	s.revoke(t, revoked, ca.ReasonKeyCompromise)
	superseded := s.issue(t)
	s.revoke(t, superseded, ca.ReasonSuperseded)
	// Signed by the same CA, recorded in another database: unknown here.
	unknown := issueWith(t, testkit.NewEngine(t, s.h, testkit.MustOpenDB(t)), "stranger@example.com")

	dir := t.TempDir()
	issuing := writePEM(t, dir, "issuing.pem", "CERTIFICATE", s.h.Issuer.Cert.Raw)
	root := writePEM(t, dir, "root.pem", "CERTIFICATE", s.h.Root.Raw)
	tests := []struct {
		name   string
		cert   *x509.Certificate
		status string
		reason string
	}{
		{"good", good, "good", ""},
		{"revoked", revoked, "revoked", "keyCompromise"},
		{"superseded", superseded, "revoked", "superseded"},
		{"unknown", unknown, "unknown", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := writePEM(t, dir, tt.name+".pem", "CERTIFICATE", tt.cert.Raw)
			cmd := exec.Command(openssl, "ocsp", "-issuer", issuing, "-CAfile", root, "-cert", leaf, "-url", s.srv.URL+"/ocsp")
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("openssl ocsp: %v\n%s", err, out)
			}
			text := string(out)
			if !strings.Contains(text, "Response verify OK") {
				t.Errorf("openssl did not verify the response:\n%s", text)
			}
			if !strings.Contains(text, leaf+": "+tt.status+"\n") {
				t.Errorf("openssl reports no %q status:\n%s", tt.status, text)
			}
			if tt.reason != "" && !strings.Contains(text, "Reason: "+tt.reason) {
				t.Errorf("openssl reports no reason %s:\n%s", tt.reason, text)
			}
			if tt.status == "revoked" && !strings.Contains(text, "Revocation Time:") {
				t.Errorf("openssl reports no revocation time:\n%s", text)
			}
		})
	}

	// Trusting another root, openssl refuses the response.
	other := testkit.NewHierarchy(t, keys.ECDSAP256)
	otherRoot := writePEM(t, dir, "other-root.pem", "CERTIFICATE", other.Root.Raw)
	cmd := exec.Command(openssl, "ocsp", "-issuer", issuing, "-CAfile", otherRoot, "-cert", writePEM(t, dir, "g.pem", "CERTIFICATE", good.Raw), "-url", s.srv.URL+"/ocsp")
	if out, err := cmd.CombinedOutput(); err == nil && strings.Contains(string(out), "Response verify OK") {
		t.Errorf("openssl verified the response against another root:\n%s", out)
	}
}

// TestOCSPHTTP checks both transports of RFC 5019 and the headers that let
// a cache keep a response no longer than it may.
func TestOCSPHTTP(t *testing.T) {
	s := newPKIServer(t)
	cert := s.issue(t)
	req := ocspRequest(t, cert.SerialNumber, s.h.Issuer.Cert)
	check := func(t *testing.T, res *http.Response, body []byte) *ocsp.Response {
		t.Helper()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		r, err := ocsp.ParseResponseForCert(body, cert, s.h.Issuer.Cert)
		if err != nil {
			t.Fatalf("ParseResponseForCert: %v", err)
		}
		cc := res.Header.Get("Cache-Control")
		maxAge, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(cc, "public, max-age="), ", no-transform"))
		if err != nil || maxAge <= 0 || time.Duration(maxAge)*time.Second > time.Until(r.NextUpdate) {
			t.Errorf("Cache-Control %q: want a max-age before nextUpdate (%s)", cc, r.NextUpdate)
		}
		if exp, err := http.ParseTime(res.Header.Get("Expires")); err != nil || exp.After(r.NextUpdate) {
			t.Errorf("Expires %q, after nextUpdate %s", res.Header.Get("Expires"), r.NextUpdate)
		}
		if lm, err := http.ParseTime(res.Header.Get("Last-Modified")); err != nil || !lm.Equal(r.ProducedAt) {
			t.Errorf("Last-Modified %q, want producedAt %s", res.Header.Get("Last-Modified"), r.ProducedAt)
		}
		return r
	}
	t.Run("post", func(t *testing.T) {
		res, body := s.post(t, req)
		if r := check(t, res, body); r.Status != ocsp.Good {
			t.Errorf("status %d, want good", r.Status)
		}
	})
	for name, enc := range map[string]string{
		"get":         url.PathEscape(base64.StdEncoding.EncodeToString(req)),
		"get raw url": base64.RawURLEncoding.EncodeToString(req),
	} {
		t.Run(name, func(t *testing.T) {
			res, body := s.get(t, "/ocsp/"+enc)
			if r := check(t, res, body); r.Status != ocsp.Good {
				t.Errorf("status %d, want good", r.Status)
			}
		})
	}
	// Base64 holds "/": a request whose encoding has "//", sent without
	// escaping, must not be redirected to a cleaned path.
	t.Run("get with //", func(t *testing.T) {
		var enc string
		for i := 0; i < 5000 && !strings.Contains(enc, "//"); i++ {
			n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 150))
			enc = base64.StdEncoding.EncodeToString(ocspRequest(t, n, s.h.Issuer.Cert))
		}
		if !strings.Contains(enc, "//") {
			t.Skip("no request encoding with // found")
		}
		res, body := s.get(t, "/ocsp/"+enc)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d (Location %q), want 200", res.StatusCode, res.Header.Get("Location"))
		}
		if r, err := ocsp.ParseResponse(body, s.h.Issuer.Cert); err != nil || r.Status != ocsp.Unknown {
			t.Errorf("ParseResponse = %v, %v; want unknown", r, err)
		}
	})
	t.Run("revocation shows", func(t *testing.T) {
		s.revoke(t, cert, ca.ReasonPrivilegeWithdrawn)
		res, body := s.post(t, req)
		if r := check(t, res, body); r.Status != ocsp.Revoked || r.RevocationReason != ocsp.PrivilegeWithdrawn {
			t.Errorf("status %d reason %d, want revoked for privilegeWithdrawn", r.Status, r.RevocationReason)
		}
	})
}

// TestOCSPHTTPBadRequests sends what a careless or hostile client might:
// every one gets an OCSP error response, never a crash or a guess.
func TestOCSPHTTPBadRequests(t *testing.T) {
	s := newPKIServer(t)
	cert := s.issue(t)
	good := ocspRequest(t, cert.SerialNumber, s.h.Issuer.Cert)
	other := testkit.NewHierarchy(t, keys.ECDSAP256)
	garbage := make([]byte, 512)
	rand.Read(garbage)
	oversized := append(append([]byte{}, good...), make([]byte, 20<<10)...)

	posts := []struct {
		name string
		body []byte
		want ocsp.ResponseStatus
	}{
		{"empty", nil, ocsp.Malformed},
		{"garbage", garbage, ocsp.Malformed},
		{"truncated", good[:len(good)/2], ocsp.Malformed},
		{"oversized", oversized, ocsp.Malformed},
		{"other issuer", ocspRequest(t, cert.SerialNumber, other.Issuer.Cert), ocsp.Unauthorized},
	}
	for _, tt := range posts {
		t.Run("post "+tt.name, func(t *testing.T) {
			res, body := s.post(t, tt.body)
			wantError(t, res, body, tt.want)
		})
	}
	gets := []struct {
		name, path string
		want       ocsp.ResponseStatus
	}{
		{"empty", "/ocsp/", ocsp.Malformed},
		{"not base64", "/ocsp/not*base64!", ocsp.Malformed},
		{"base64 of garbage", "/ocsp/" + base64.URLEncoding.EncodeToString(garbage), ocsp.Malformed},
		{"huge", "/ocsp/" + strings.Repeat("A", 20<<10), ocsp.Malformed},
		{"other issuer", "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(ocspRequest(t, cert.SerialNumber, other.Issuer.Cert))), ocsp.Unauthorized},
	}
	for _, tt := range gets {
		t.Run("get "+tt.name, func(t *testing.T) {
			res, body := s.get(t, tt.path)
			wantError(t, res, body, tt.want)
		})
	}
	req, _ := http.NewRequest(http.MethodPut, s.srv.URL+"/ocsp", bytes.NewReader(good))
	if res, _ := do(t, req); res.StatusCode < 400 {
		t.Errorf("PUT /ocsp: status %d, want an error", res.StatusCode)
	}
}

func wantError(t *testing.T, res *http.Response, body []byte, want ocsp.ResponseStatus) {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("status %d, Content-Type %q; want 200 with an OCSP response", res.StatusCode, res.Header.Get("Content-Type"))
	}
	_, err := ocsp.ParseResponse(body, nil)
	re, ok := err.(ocsp.ResponseError)
	if !ok || re.Status != want {
		t.Errorf("response: %v, want the error response %v", err, want)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q on an error response, want no-store", cc)
	}
}

// TestCRLHTTP fetches the CRL at the URL the certificates name, as a
// relying party would, and has openssl verify it and read the entries.
func TestCRLHTTP(t *testing.T) {
	s := newPKIServer(t)
	cert := s.issue(t)
	s.revoke(t, cert, ca.ReasonKeyCompromise)
	dp, err := url.Parse(cert.CRLDistributionPoints[0])
	if err != nil {
		t.Fatal(err)
	}
	if dp.Path != "/crl/"+s.h.Issuer.ID+".crl" {
		t.Fatalf("CRL distribution point %s", dp)
	}
	res, body := s.get(t, dp.Path)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET %s: status %d, Content-Type %q", dp.Path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(body)
	if err != nil || crl.CheckSignatureFrom(s.h.Issuer.Cert) != nil {
		t.Fatalf("served CRL: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Errorf("served CRL lists %d entries, want the revoked certificate", len(crl.RevokedCertificateEntries))
	}
	cc := res.Header.Get("Cache-Control")
	maxAge, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(cc, "public, max-age="), ", no-transform"))
	if err != nil || maxAge <= 0 || time.Duration(maxAge)*time.Second > time.Until(crl.NextUpdate) {
		t.Errorf("Cache-Control %q: want a max-age before nextUpdate %s", cc, crl.NextUpdate)
	}
	etag := res.Header.Get("ETag")
	if res, _ := s.get(t, dp.Path, "If-None-Match", etag); etag == "" || res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s: status %d, want 304", etag, res.StatusCode)
	}
	for _, path := range []string{"/crl/0000000000000000.crl", "/crl/" + s.h.Issuer.ID, "/crl/.crl"} {
		if res, _ := s.get(t, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}

	openssl := clients.RequireTool(t, "openssl")
	dir := t.TempDir()
	crlFile := filepath.Join(dir, "crl.der")
	if err := os.WriteFile(crlFile, body, 0o600); err != nil {
		t.Fatal(err)
	}
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", s.h.Issuer.Cert.Raw, s.h.Root.Raw)
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", crlFile, "-CAfile", caFile, "-verify", "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	serial := strings.ToUpper(cert.SerialNumber.Text(16))
	if !strings.Contains(string(out), "verify OK") || !strings.Contains(string(out), serial) || !strings.Contains(string(out), "Key Compromise") {
		t.Errorf("openssl crl does not verify or list %s for Key Compromise:\n%s", serial, out)
	}
}

// TestCACertificates fetches the caIssuers URL of a certificate and the
// root's, and checks the PEM chain is still served beside them.
func TestCACertificates(t *testing.T) {
	s := newPKIServer(t)
	cert := s.issue(t)
	aia, err := url.Parse(cert.IssuingCertificateURL[0])
	if err != nil {
		t.Fatal(err)
	}
	res, body := s.get(t, aia.Path)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/pkix-cert" || !bytes.Equal(body, s.h.Issuer.Cert.Raw) {
		t.Fatalf("GET %s: status %d, Content-Type %q; want the issuing CA in DER", aia.Path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	rootURL, _ := url.Parse(s.h.Issuer.Cert.IssuingCertificateURL[0])
	if res, body := s.get(t, rootURL.Path); res.StatusCode != http.StatusOK || !bytes.Equal(body, s.h.Root.Raw) {
		t.Errorf("GET %s: status %d; want the root in DER", rootURL.Path, res.StatusCode)
	}
	if res, body := s.get(t, "/ca/chain.pem"); res.StatusCode != http.StatusOK || !strings.Contains(string(body), "BEGIN CERTIFICATE") {
		t.Errorf("GET /ca/chain.pem: status %d", res.StatusCode)
	}
	for _, path := range []string{"/ca/0000000000000000.crt", "/ca/" + s.h.Issuer.ID + ".pem"} {
		if res, _ := s.get(t, path); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}
	ocspURL, _ := url.Parse(cert.OCSPServer[0])
	if ocspURL.Path != "/ocsp" {
		t.Errorf("OCSP URL %s, want the path /ocsp", ocspURL)
	}
}
