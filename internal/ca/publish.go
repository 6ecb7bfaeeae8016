package ca

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// RevocationFeed lists an issuer's revocations in the order they were made.
type RevocationFeed interface {
	// RevokedSince returns up to limit serials (SerialHex form) revoked
	// under the issuer after revocation sequence number after, and the
	// sequence number of the last one (after itself when there is none).
	RevokedSince(ctx context.Context, issuerID string, after int64, limit int) (serials []string, last int64, err error)
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	CRL  *CRLPublisher
	OCSP *OCSPResponder // nil when no OCSP responder runs
	Feed RevocationFeed
	// Poll is how often the store is asked for new revocations; zero means
	// one second.
	Poll time.Duration
	// Settle is how long after a revocation the new CRL is made, so that a
	// burst of revocations makes one CRL; zero means two seconds.
	Settle time.Duration
	Logger *slog.Logger // nil discards
}

// Publisher keeps an issuer's revocation status current in a server: it
// watches the store for revocations, whichever process made them (the
// command line, another node), drops their cached OCSP responses at once
// and makes a new CRL a few seconds later; it makes a CRL every interval
// regardless, and renews the delegated OCSP responder certificate.
type Publisher struct {
	crl    *CRLPublisher
	ocsp   *OCSPResponder
	feed   RevocationFeed
	poll   time.Duration
	settle time.Duration
	log    *slog.Logger

	seq     int64     // the last revocation seen
	pending time.Time // when a revocation not yet in the CRL was first seen
}

// NewPublisher returns a Publisher for cfg.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.CRL == nil || cfg.Feed == nil {
		return nil, errors.New("ca: publisher needs a CRL publisher and a revocation feed")
	}
	p := &Publisher{crl: cfg.CRL, ocsp: cfg.OCSP, feed: cfg.Feed, poll: cfg.Poll, settle: cfg.Settle, log: cfg.Logger}
	if p.poll == 0 {
		p.poll = time.Second
	}
	if p.settle == 0 {
		p.settle = 2 * time.Second
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// Start readies everything before the server takes requests: it notes
// where the revocation feed stands, starts the OCSP responder and brings
// the CRL up to date (making one when it is missing or stale).
func (p *Publisher) Start(ctx context.Context) error {
	seq, err := p.crl.store.RevocationSeq(ctx, p.crl.issuer.ID)
	if err != nil {
		return err
	}
	p.seq = seq
	if p.ocsp != nil {
		if err := p.ocsp.Start(ctx); err != nil {
			return err
		}
	}
	_, _, err = p.crl.Refresh(ctx)
	return err
}

// Run calls Poll every poll interval until ctx is done, logging failures;
// a failed step is tried again at the next poll.
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(p.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
				p.log.Error("revocation publishing", "issuer", p.crl.issuer.ID, "err", err)
			}
		}
	}
}

// Poll does one round of Run's work.
func (p *Publisher) Poll(ctx context.Context) error {
	now := p.crl.now()
	// 1. New revocations: their cached OCSP responses go at once.
	for {
		serials, last, err := p.feed.RevokedSince(ctx, p.crl.issuer.ID, p.seq, 1000)
		if err != nil {
			return err
		}
		if len(serials) == 0 {
			break
		}
		if p.ocsp != nil {
			p.ocsp.Invalidate(serials...)
		}
		p.seq = last
		if p.pending.IsZero() {
			p.pending = now
		}
		p.log.Info("certificates revoked", "issuer", p.crl.issuer.ID, "count", len(serials))
	}

	// 2. The CRL: soon after a revocation, or when due. Refresh also
	// takes over a newer CRL that another process stored ('mailca crl',
	// another node); it costs two lookups by primary key when nothing is
	// due.
	var (
		c    *CRL
		made bool
		err  error
	)
	switch {
	case !p.pending.IsZero() && now.Sub(p.pending) >= p.settle:
		if c, err = p.crl.Generate(ctx); err == nil {
			p.pending, made = time.Time{}, true
		}
	case p.pending.IsZero():
		c, made, err = p.crl.Refresh(ctx)
	}
	if made {
		p.log.Info("CRL published", "issuer", c.IssuerID, "number", c.Number, "entries", c.Entries, "bytes", len(c.DER))
	}

	// 3. The delegated responder's certificate.
	if p.ocsp != nil {
		err = errors.Join(err, p.ocsp.Maintain(ctx))
	}
	return err
}
