package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/mailca/mailca/internal/keys"
)

// LintSources are the zlint sources every certificate must pass before the
// real key signs it.
var LintSources = lint.SourceList{lint.RFC5280, lint.CABFSMIMEBaselineRequirements}

// Linter lints certificates before issuance. It signs each candidate with a
// throwaway key of the issuer's key type, under a copy of the issuer
// certificate that carries the throwaway public key, so the lint certificate
// has exactly the TBS bytes the real one will have.
type Linter struct {
	registry lint.Registry
	waived   map[string]bool // warnings the operator accepted by name

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
	waived := map[string]bool{}
	for _, w := range waiveWarnings {
		if !strings.HasPrefix(w, "w_") || reg.ByName(w) == nil {
			return nil, fmt.Errorf("ca: cannot waive %q: only warning lints (w_...) of the S/MIME and RFC 5280 sources can be waived", w)
		}
		waived[w] = true
	}
	return &Linter{registry: reg, waived: waived, signers: map[keys.Type]crypto.Signer{}}, nil
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

// lintIssuer returns a copy of issuer whose public key is a throwaway key of
// the same type, and that throwaway key.
func (l *Linter) lintIssuer(issuer *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	t, err := keys.TypeOf(issuer.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: issuer key: %w", err)
	}
	s, err := l.throwaway(t)
	if err != nil {
		return nil, nil, err
	}
	fake := *issuer
	fake.PublicKey = s.Public()
	return &fake, s, nil
}

// Sign returns template signed by a throwaway key under issuer's name, for
// linting. Nothing signed here is ever valid under the real issuer.
func (l *Linter) Sign(template, issuer *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	fake, s, err := l.lintIssuer(issuer)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, template, fake, pub, s)
	if err != nil {
		return nil, fmt.Errorf("ca: signing lint certificate: %w", err)
	}
	return der, nil
}

// Check lints a DER certificate and returns a *LintError listing every
// warning, error or fatal result, or nil when there are none.
func (l *Linter) Check(der []byte) error {
	findings, err := l.Run(der)
	if err != nil {
		return err
	}
	var bad []Finding
	for _, f := range findings {
		switch f.Status {
		case "warn":
			if !l.waived[f.Lint] {
				bad = append(bad, f)
			}
		case "error", "fatal":
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		return &LintError{Findings: bad}
	}
	return nil
}

// Run lints a DER certificate and returns every result, including passes
// and non-applicable lints, sorted by lint name.
func (l *Linter) Run(der []byte) ([]Finding, error) {
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: lint certificate does not parse: %w", err)
	}
	rs := zlint.LintCertificateEx(zc, l.registry)
	out := make([]Finding, 0, len(rs.Results))
	for name, r := range rs.Results {
		out = append(out, Finding{Lint: name, Status: statusName(r.Status), Details: r.Details})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lint < out[j].Lint })
	return out, nil
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
