package pki_test

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web/pki"
)

// TestStaticRootCRL serves an offline root's CRL at the URL the issuing
// CA certificate names.
func TestStaticRootCRL(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	der, err := ca.NewRootCRL(h.Root, h.RootKey, nil, 7, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	handler := pki.New(pki.Config{StaticCRLs: []*x509.RevocationList{crl}})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /crl/{file}", handler.CRL)
	id := hex.EncodeToString(h.Root.SubjectKeyId[:8])
	if want := testkit.PKIBaseURL + "/crl/" + id + ".crl"; h.Issuer.Cert.CRLDistributionPoints[0] != want {
		t.Fatalf("issuing CA CRL DP %q, want %q", h.Issuer.Cert.CRLDistributionPoints[0], want)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/crl/"+id+".crl", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != 200 || !bytes.Equal(body, der) || rec.Header().Get("Content-Type") != "application/pkix-crl" {
		t.Errorf("GET root CRL: %d, %s, %d bytes", rec.Code, rec.Header().Get("Content-Type"), len(body))
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/crl/0000000000000000.crl", nil))
	if rec.Code != 404 {
		t.Errorf("GET unknown CRL: %d, want 404", rec.Code)
	}
}
