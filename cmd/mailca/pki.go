package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/web/pki"
)

// startPKI readies revocation publishing for the issuing CA before the
// server takes requests: the CRL (made now when missing or stale), the
// OCSP responder with a new delegated responder certificate, and the
// goroutine, stopped by workCtx, that keeps both current. It returns the
// handler that serves them.
func startPKI(ctx, workCtx context.Context, wg *sync.WaitGroup, in *datadir.Instance, logger *slog.Logger) (*pki.Handler, error) {
	iss := in.Engine.Issuer()
	crls, err := ca.NewCRLPublisher(ca.CRLConfig{Issuer: iss, Store: in.DB, Interval: in.Config.CA.CRLInterval})
	if err != nil {
		return nil, err
	}
	responder, err := ca.NewOCSPResponder(ca.OCSPConfig{Issuer: iss, Store: in.DB, Delegate: in.Engine})
	if err != nil {
		return nil, err
	}
	pub, err := ca.NewPublisher(ca.PublisherConfig{CRL: crls, OCSP: responder, Feed: in.DB, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := pub.Start(ctx); err != nil {
		return nil, fmt.Errorf("preparing the CRL and the OCSP responder: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pub.Run(workCtx)
	}()
	var static []*x509.RevocationList
	if der, err := os.ReadFile(datadir.RootCRLPath(in.Config.Dir)); err == nil {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("the root CRL %s: %w", datadir.RootCRLPath(in.Config.Dir), err)
		}
		if time.Now().After(crl.NextUpdate) {
			logger.Warn("the root CA's CRL has expired: sign a new one with 'mailca ca root-crl'", "next_update", crl.NextUpdate)
		}
		static = append(static, crl)
	}
	return pki.New(pki.Config{
		CRLs: crls, OCSP: responder, Logger: logger, StaticCRLs: static,
		CACerts: append([]*x509.Certificate{iss.Cert}, iss.Chain...),
	}), nil
}
