package pki_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
)

// FuzzOCSPHandler sends arbitrary bytes to the OCSP routes, as a POST body
// and base64-encoded in a GET path, through the whole web handler. Every
// answer must be HTTP 200 with an OCSP response: a signed one that verifies
// under the issuing CA, or an error response (malformedRequest,
// unauthorized, tryLater); never a panic, a 5xx, or anything else.
//
//	go test -run '^$' -fuzz FuzzOCSPHandler -fuzztime 60s ./internal/web/pki/
func FuzzOCSPHandler(f *testing.F) {
	s := newPKIServer(f)
	cert := s.issue(f)
	good := ocspRequest(f, cert.SerialNumber, s.h.Issuer.Cert)
	other := testkit.NewHierarchy(f, keys.ECDSAP256)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(append([]byte{}, good...), 0, 0))
	f.Add(ocspRequest(f, cert.SerialNumber, other.Issuer.Cert))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add(bytes.Repeat([]byte{0x30, 0x80}, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		post := httptest.NewRequest(http.MethodPost, "/ocsp", bytes.NewReader(data))
		get := httptest.NewRequest(http.MethodGet, "/ocsp/", nil)
		get.URL.Path += base64.StdEncoding.EncodeToString(data)
		for _, req := range []*http.Request{post, get} {
			rec := httptest.NewRecorder()
			s.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/ocsp-response" {
				t.Fatalf("%s: status %d, Content-Type %q", req.Method, rec.Code, rec.Header().Get("Content-Type"))
			}
			resp, err := ocsp.ParseResponse(rec.Body.Bytes(), s.h.Issuer.Cert)
			if _, isError := err.(ocsp.ResponseError); isError {
				continue
			}
			if err != nil {
				t.Fatalf("%s: answer is neither a signed response nor an error response: %v", req.Method, err)
			}
			if resp.Status == ocsp.Good && resp.SerialNumber.Cmp(cert.SerialNumber) != 0 && resp.SerialNumber.Cmp(s.responder.ResponderCertificate().SerialNumber) != 0 {
				t.Fatalf("%s: good for serial %x, which was never issued", req.Method, resp.SerialNumber)
			}
		}
	})
}
