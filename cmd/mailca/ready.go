package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/web"
)

// signerProbeEvery is how long a signer probe's outcome is reused. /readyz
// needs no authentication, and a probe costs a signature: reusing it keeps
// a flood of /readyz from becoming a flood of signatures.
const signerProbeEvery = 10 * time.Second

// readyChecks returns what GET /readyz checks: that the database answers
// a trivial query, and that the issuing key signs (ca.Issuer.Probe).
func readyChecks(in *datadir.Instance) []web.ReadyCheck {
	p := &signerProbe{in: in}
	return []web.ReadyCheck{
		{Name: "database", Check: in.DB.Ping},
		{Name: "signer", Check: p.check},
	}
}

// signerProbe runs ca.Issuer.Probe at most once per signerProbeEvery.
type signerProbe struct {
	in *datadir.Instance

	mu   sync.Mutex
	at   time.Time // of the last probe; zero before the first
	last error
}

func (p *signerProbe) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < signerProbeEvery {
		return p.last
	}
	if p.in.Engine == nil {
		return errors.New("no issuing key loaded")
	}
	p.last = p.in.Engine.Issuer().Probe(ctx)
	p.at = time.Now()
	return p.last
}
