package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	_ "github.com/zmap/zlint/v3" // registers the lints
	"github.com/zmap/zlint/v3/lint"

	"github.com/mailca/mailca/internal/keys"
)

// LintSources are the zlint sources every certificate must pass before the
// real key signs it.
var LintSources = lint.SourceList{lint.RFC5280, lint.CABFSMIMEBaselineRequirements}

// Linter lints certificates before issuance. Each candidate is encoded
// under the issuer's certificate and signed by a throwaway key of the
// issuer's algorithm, so the lint certificate has exactly the TBS bytes the
// real one will have.
type Linter struct {
	// lints and config come from the filtered registry, listed once:
	// zlint.LintCertificateEx sorts every lint name and fills a map of
	// results on each call, a quarter again on top of the lints themselves.
	lints  []*lint.CertificateLint
	config lint.Configuration
	waived map[string]bool // warnings the operator accepted by name

	mu      sync.Mutex
	signers map[keys.Type]crypto.Signer // throwaway keys, made on first use
}

// NewLinter returns a Linter running the lints of LintSources. Every
// error and warning refuses a certificate, except warnings named in
// waiveWarnings. Waiving exists for one case: a development CA whose CRL and
// AIA URLs point at localhost, which the BR lints rightly warn about. Errors
// can never be waived.
func NewLinter(waiveWarnings ...string) (*Linter, error) {
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: LintSources})
	if err != nil {
		return nil, fmt.Errorf("ca: building lint registry: %w", err)
	}
	lints := reg.CertificateLints().Lints()
	if len(lints) == 0 {
		// An empty registry would pass every certificate.
		return nil, errors.New("ca: the lint registry is empty")
	}
	waived := map[string]bool{}
	for _, w := range waiveWarnings {
		if !strings.HasPrefix(w, "w_") || reg.ByName(w) == nil {
			return nil, fmt.Errorf("ca: cannot waive %q: only warning lints (w_...) of the S/MIME and RFC 5280 sources can be waived", w)
		}
		waived[w] = true
	}
	return &Linter{
		lints:   lints,
		config:  reg.GetConfiguration(),
		waived:  waived,
		signers: map[keys.Type]crypto.Signer{},
	}, nil
}

func (l *Linter) throwaway(t keys.Type) (crypto.Signer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.signers[t]; ok {
		return s, nil
	}
	s, err := keys.Generate(rand.Reader, t)
	if err != nil {
		return nil, err
	}
	l.signers[t] = s
	return s, nil
}

// throwawayType returns the type of throwaway key that signs lint
// certificates under an issuer key: the issuer's own type for ECDSA, and
// RSA-2048 for any RSA key. The key's size appears nowhere in the TBS and no
// lint reads the signature value, so a smaller RSA key yields the same lint
// results in a third of the time of an RSA-3072 signature; 2048 bits is
// the smallest size Go signs with in every mode, FIPS 140-3 included.
func throwawayType(issuer crypto.PublicKey) (keys.Type, error) {
	t, err := keys.TypeOf(issuer)
	if err != nil {
		return "", fmt.Errorf("ca: issuer key: %w", err)
	}
	if _, ok := issuer.(*rsa.PublicKey); ok {
		return keys.RSA2048, nil
	}
	return t, nil
}

// Sign returns template signed by a throwaway key under issuer's name, for
// linting. Nothing signed here is ever valid under the real issuer.
func (l *Linter) Sign(template, issuer *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	lc, err := l.lintCertificate(template, issuer, pub)
	if err != nil {
		return nil, err
	}
	return lc.der, nil
}

// lintCert is a certificate-to-be signed by a throwaway key.
type lintCert struct {
	der  []byte
	tbs  []byte            // its TBSCertificate: what the issuer's key may sign
	opts crypto.SignerOpts // how the issuer's key signs it (the hash)
}

// lintCertificate encodes template under issuer with x509.CreateCertificate
// and signs the result with a throwaway key.
func (l *Linter) lintCertificate(template, issuer *x509.Certificate, pub crypto.PublicKey) (lintCert, error) {
	// CreateCertificate encodes the TBS exactly as it would for the real
	// signature (the parent and the signer's public key are the issuer's),
	// hands it to tbsCapture and stops. Going on to the end with a
	// throwaway key would also verify the throwaway signature, which for
	// ECDSA costs twice the signature itself and proves nothing.
	capture := &tbsCapture{pub: issuer.PublicKey}
	if _, err := x509.CreateCertificate(rand.Reader, template, issuer, pub, capture); !errors.Is(err, errTBSCaptured) {
		if err == nil {
			err = errors.New("the TBS was never offered for signing")
		}
		return lintCert{}, fmt.Errorf("ca: building lint certificate: %w", err)
	}
	t, err := throwawayType(issuer.PublicKey)
	if err != nil {
		return lintCert{}, err
	}
	s, err := l.throwaway(t)
	if err != nil {
		return lintCert{}, err
	}
	sig, err := crypto.SignMessage(s, rand.Reader, capture.tbs, capture.opts)
	if err != nil {
		return lintCert{}, fmt.Errorf("ca: signing lint certificate: %w", err)
	}
	der, err := certificateDER(capture.tbs, sig)
	if err != nil {
		return lintCert{}, fmt.Errorf("ca: building lint certificate: %w", err)
	}
	return lintCert{der: der, tbs: capture.tbs, opts: capture.opts}, nil
}

// errTBSCaptured is how tbsCapture stops x509.CreateCertificate.
var errTBSCaptured = errors.New("ca: TBS captured")

// tbsCapture is a crypto.MessageSigner that records the message (the DER
// TBSCertificate) and signing options x509.CreateCertificate passes it,
// and refuses to sign. It holds no private key: pub is only what it
// claims to be.
type tbsCapture struct {
	pub  crypto.PublicKey
	tbs  []byte
	opts crypto.SignerOpts
}

func (c *tbsCapture) Public() crypto.PublicKey { return c.pub }

func (c *tbsCapture) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("ca: tbsCapture only takes whole messages")
}

func (c *tbsCapture) SignMessage(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.tbs, c.opts = bytes.Clone(msg), opts
	return nil, errTBSCaptured
}

// certificateDER joins a DER TBSCertificate and a signature into a DER
// Certificate (RFC 5280 4.1.1). The outer signatureAlgorithm must equal the
// TBS's signature field, so it is copied from there.
func certificateDER(tbs, sig []byte) ([]byte, error) {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(tbs, &seq); err != nil || len(rest) > 0 || seq.Tag != asn1.TagSequence {
		return nil, errors.New("TBSCertificate is not one DER SEQUENCE")
	}
	// The fields before signature are version ([0], optional) and
	// serialNumber (INTEGER); signature is the first SEQUENCE.
	var alg asn1.RawValue
	for rest := seq.Bytes; ; {
		var err error
		if rest, err = asn1.Unmarshal(rest, &alg); err != nil {
			return nil, errors.New("TBSCertificate has no signature algorithm")
		}
		if alg.Class == asn1.ClassUniversal && alg.Tag == asn1.TagSequence {
			break
		}
	}
	return asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}{
		TBS:       asn1.RawValue{FullBytes: tbs},
		Algorithm: asn1.RawValue{FullBytes: alg.FullBytes},
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
}

// Check lints a DER certificate and returns a *LintError listing every
// warning, error or fatal result, or nil when there are none.
func (l *Linter) Check(der []byte) error {
	var bad []Finding
	err := l.each(der, func(name string, r *lint.LintResult) {
		switch {
		case r.Status == lint.Warn && l.waived[name]:
		case r.Status == lint.Warn, r.Status == lint.Error, r.Status == lint.Fatal:
			bad = append(bad, Finding{Lint: name, Status: statusName(r.Status), Details: r.Details})
		}
	})
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		sort.Slice(bad, func(i, j int) bool { return bad[i].Lint < bad[j].Lint })
		return &LintError{Findings: bad}
	}
	return nil
}

// Run lints a DER certificate and returns every result, including passes
// and non-applicable lints, sorted by lint name.
func (l *Linter) Run(der []byte) ([]Finding, error) {
	out := make([]Finding, 0, len(l.lints))
	err := l.each(der, func(name string, r *lint.LintResult) {
		out = append(out, Finding{Lint: name, Status: statusName(r.Status), Details: r.Details})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lint < out[j].Lint })
	return out, nil
}

// each parses der with zcrypto and runs every lint of the registry on it,
// as zlint.LintCertificateEx does, passing each result to fn.
func (l *Linter) each(der []byte, fn func(name string, r *lint.LintResult)) error {
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("ca: lint certificate does not parse: %w", err)
	}
	for _, cl := range l.lints {
		fn(cl.Name, cl.Execute(zc, l.config))
	}
	return nil
}

func statusName(s lint.LintStatus) string {
	switch s {
	case lint.Pass:
		return "pass"
	case lint.NA:
		return "na"
	case lint.NE:
		return "ne"
	case lint.Notice:
		return "notice"
	case lint.Warn:
		return "warn"
	case lint.Error:
		return "error"
	case lint.Fatal:
		return "fatal"
	}
	return "reserved"
}
