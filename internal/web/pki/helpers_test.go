package pki_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
	"github.com/mailca/mailca/internal/web/pki"
)

// pkiServer is mailca's whole web handler, PKI routes included, over a real
// database and issuing CA, listening on loopback.
type pkiServer struct {
	h         *testkit.Hierarchy
	db        *sqlite.DB
	engine    *ca.Engine
	svc       *enrol.Service
	crls      *ca.CRLPublisher
	responder *ca.OCSPResponder
	pub       *ca.Publisher
	handler   http.Handler
	srv       *httptest.Server
	n         atomic.Int32
}

func newPKIServer(tb testing.TB) *pkiServer {
	tb.Helper()
	ctx := context.Background()
	s := &pkiServer{h: testkit.NewHierarchy(tb, keys.ECDSAP256), db: testkit.MustOpenDB(tb)}
	s.engine = testkit.NewEngine(tb, s.h, s.db)
	s.svc = enrol.NewService(enrol.Config{Store: s.db, Issuer: s.engine, PublicURL: "https://mailca.example"})
	var err error
	if s.crls, err = ca.NewCRLPublisher(ca.CRLConfig{Issuer: s.h.Issuer, Store: s.db}); err != nil {
		tb.Fatal(err)
	}
	if s.responder, err = ca.NewOCSPResponder(ca.OCSPConfig{Issuer: s.h.Issuer, Store: s.db, Delegate: s.engine}); err != nil {
		tb.Fatal(err)
	}
	if s.pub, err = ca.NewPublisher(ca.PublisherConfig{CRL: s.crls, OCSP: s.responder, Feed: s.db, Settle: time.Nanosecond}); err != nil {
		tb.Fatal(err)
	}
	if err := s.pub.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	p := pki.New(pki.Config{CRLs: s.crls, OCSP: s.responder, CACerts: []*x509.Certificate{s.h.Issuer.Cert, s.h.Root}})
	s.handler, err = web.New(web.Config{Enrol: s.svc, PKI: p, ChainPEM: s.h.Issuer.ChainPEM(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	s.srv = httptest.NewServer(s.handler)
	tb.Cleanup(s.srv.Close)
	return s
}

// issue issues a certificate to a new mailbox.
func (s *pkiServer) issue(tb testing.TB) *x509.Certificate {
	tb.Helper()
	return issueWith(tb, s.engine, "user"+strconv.Itoa(int(s.n.Add(1)))+"@example.com")
}

func issueWith(tb testing.TB, e *ca.Engine, addr string) *x509.Certificate {
	tb.Helper()
	a, err := mailbox.Parse(addr)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := e.Issue(context.Background(), ca.Request{PublicKey: keys.MustGenerate(keys.ECDSAP256).Public(), Mailbox: a})
	if err != nil {
		tb.Fatal(err)
	}
	return c.Cert
}

// revoke revokes c the way an administrator does and lets the server
// notice, as its publisher would within a second.
func (s *pkiServer) revoke(tb testing.TB, c *x509.Certificate, reason ca.RevocationReason) {
	tb.Helper()
	ctx := context.Background()
	if _, err := s.svc.Revoke(ctx, "admin:test", ca.SerialHex(c.SerialNumber), reason); err != nil {
		tb.Fatal(err)
	}
	// The first poll sees the revocation, the second (past the nanosecond
	// of settling time) makes the CRL.
	for range 2 {
		if err := s.pub.Poll(ctx); err != nil {
			tb.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

func ocspRequest(tb testing.TB, serial *big.Int, issuer *x509.Certificate) []byte {
	tb.Helper()
	req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		tb.Fatal(err)
	}
	return req
}
