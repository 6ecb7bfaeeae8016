package ca_test

import (
	"context"
	"crypto"
	"errors"
	"io"
	"testing"

	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
)

// brokenSigner fails every signature, as an HSM that went away would.
type brokenSigner struct{ crypto.Signer }

func (brokenSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("token removed")
}

// hangingSigner never answers until released.
type hangingSigner struct {
	crypto.Signer
	release chan struct{}
}

func (s hangingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	<-s.release
	return nil, errors.New("released")
}

func TestProbe(t *testing.T) {
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.ECDSAP384, keys.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			h := testkit.NewHierarchy(t, kt)
			if err := h.Issuer.Probe(context.Background()); err != nil {
				t.Errorf("Probe() = %v, want nil", err)
			}
			iss := *h.Issuer
			iss.Signer = brokenSigner{h.Issuer.Signer}
			if err := iss.Probe(context.Background()); err == nil {
				t.Error("Probe() with a failing signer = nil, want an error")
			}
		})
	}
}

func TestProbeTimeout(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	iss := *h.Issuer
	release := make(chan struct{})
	defer close(release)
	iss.Signer = hangingSigner{h.Issuer.Signer, release}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := iss.Probe(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Probe() with a hanging signer = %v, want context.Canceled", err)
	}
}
