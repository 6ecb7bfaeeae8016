package ca_test

import (
	"context"
	"crypto"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
)

// TestPublisher follows one revocation made behind the server's back (as
// 'mailca revoke' does, from another process): the OCSP answer changes at
// the next poll, the CRL once the settling time has passed.
func TestPublisher(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	ctx := context.Background()
	clock := newClock(time.Now())
	crls := newPublisher(t, f.h.Issuer, f.db, time.Hour, clock.now)
	responder, err := ca.NewOCSPResponder(ca.OCSPConfig{Issuer: f.h.Issuer, Store: f.db, Delegate: f.engine, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ca.NewPublisher(ca.PublisherConfig{CRL: crls, OCSP: responder, Feed: f.db, Settle: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	current := func() *ca.CRL {
		t.Helper()
		c, err := crls.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	poll := func() {
		t.Helper()
		if err := pub.Poll(ctx); err != nil {
			t.Fatalf("Poll: %v", err)
		}
	}
	if c := current(); c.Number != 1 || c.Entries != 0 {
		t.Fatalf("after Start: CRL %d with %d entries, want 1 with 0", c.Number, c.Entries)
	}

	cert := f.issue(t, 0)
	req := ocspRequest(t, cert.SerialNumber, f.h.Issuer.Cert, crypto.SHA1)
	if got := responder.Respond(ctx, req); got.Status != ocsp.Good {
		t.Fatalf("before revocation: status %d", got.Status)
	}
	f.revoke(t, cert, ca.ReasonKeyCompromise, clock.now())

	poll()
	if got := responder.Respond(ctx, req); got.Status != ocsp.Revoked {
		t.Errorf("after one poll: OCSP status %d, want revoked", got.Status)
	}
	if c := current(); c.Entries != 0 {
		t.Errorf("CRL made before the settling time")
	}
	clock.advance(2 * time.Second)
	poll()
	c := current()
	if c.Number != 2 || c.Entries != 1 {
		t.Errorf("after settling: CRL %d with %d entries, want 2 with 1", c.Number, c.Entries)
	}
	clock.advance(10 * time.Minute)
	poll()
	if got := current(); got.Number != c.Number {
		t.Errorf("a CRL was made with nothing new: %d after %d", got.Number, c.Number)
	}
	clock.advance(time.Hour)
	poll()
	if got := current(); got.Number != c.Number+1 {
		t.Errorf("no CRL after an interval: %d after %d", got.Number, c.Number)
	}
}

// TestPublisherRun runs the loop on the real clock: a revocation reaches
// the CRL within a few polls.
func TestPublisherRun(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	crls := newPublisher(t, f.h.Issuer, f.db, time.Hour, nil)
	pub, err := ca.NewPublisher(ca.PublisherConfig{CRL: crls, Feed: f.db, Poll: 10 * time.Millisecond, Settle: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); pub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	f.revoke(t, f.issue(t, 0), ca.ReasonSuperseded, time.Now())
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := crls.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Entries == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRL still has %d entries five seconds after a revocation", c.Entries)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
