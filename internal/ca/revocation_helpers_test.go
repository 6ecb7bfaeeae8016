package ca_test

import (
	"context"
	"crypto/x509"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
)

// pkiFixture is an issuing CA with its engine on a real database, for the
// CRL and OCSP tests.
type pkiFixture struct {
	h      *testkit.Hierarchy
	db     *sqlite.DB
	engine *ca.Engine
	n      atomic.Int32
}

func newPKIFixture(t *testing.T, kt keys.Type) *pkiFixture {
	t.Helper()
	f := &pkiFixture{h: testkit.NewHierarchy(t, kt), db: testkit.MustOpenDB(t)}
	f.engine = testkit.NewEngine(t, f.h, f.db)
	return f
}

// issue issues a certificate valid for validity (zero: the default) to a
// new mailbox.
func (f *pkiFixture) issue(t *testing.T, validity time.Duration) *x509.Certificate {
	t.Helper()
	addr := mustMailbox(t, "user"+strconv.Itoa(int(f.n.Add(1)))+"@example.com")
	c, err := f.engine.Issue(context.Background(), ca.Request{PublicKey: keys.MustGenerate(keys.ECDSAP256).Public(), Mailbox: addr, Validity: validity})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return c.Cert
}

// revoke marks c revoked in the store, as enrol.Service.Revoke does.
func (f *pkiFixture) revoke(t *testing.T, c *x509.Certificate, reason ca.RevocationReason, at time.Time) {
	t.Helper()
	err := f.db.InTx(context.Background(), func(tx enrol.Tx) error {
		_, revoked, err := tx.RevokeCertificate(ca.SerialHex(c.SerialNumber), reason, at)
		if err == nil && !revoked {
			t.Errorf("certificate %s was revoked already", ca.SerialHex(c.SerialNumber))
		}
		return err
	})
	if err != nil {
		t.Fatalf("RevokeCertificate: %v", err)
	}
}

// fixedClock returns a clock that reads t until moved.
type fixedClock struct{ t atomic.Int64 }

func newClock(t time.Time) *fixedClock {
	c := &fixedClock{}
	c.t.Store(t.UnixNano())
	return c
}

func (c *fixedClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fixedClock) advance(d time.Duration) { c.t.Add(int64(d)) }
