package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
)

// probeMessage is what Probe signs: never a certificate, CRL or OCSP
// response, so a probe signature cannot be mistaken for one.
const probeMessage = "mailca: signer readiness probe"

// Probe shows that the issuer's key answers: it signs a SHA-256 digest of
// a fixed text that is not DER and checks the signature against the CA
// certificate. It returns ctx's error when the signer does not answer in
// time; a signer that never answers leaves one goroutine waiting on it.
//
// For a key file the key is in memory and this costs one signature (about
// a millisecond for RSA 3072); for a key behind an HSM it is a round trip.
func (i *Issuer) Probe(ctx context.Context) error {
	if i == nil || i.Signer == nil {
		return errors.New("ca: no signer")
	}
	digest := sha256.Sum256([]byte(probeMessage))
	type result struct {
		sig []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		sig, err := i.Signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		done <- result{sig, err}
	}()
	var r result
	select {
	case <-ctx.Done():
		return fmt.Errorf("ca: signer probe: %w", ctx.Err())
	case r = <-done:
	}
	if r.err != nil {
		return fmt.Errorf("ca: signer probe: %w", r.err)
	}
	switch pub := i.Cert.PublicKey.(type) {
	case *rsa.PublicKey:
		r.err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], r.sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], r.sig) {
			r.err = errors.New("invalid signature")
		}
	default:
		r.err = fmt.Errorf("unsupported key %T", pub)
	}
	if r.err != nil {
		return fmt.Errorf("ca: signer probe: %w", r.err)
	}
	return nil
}
