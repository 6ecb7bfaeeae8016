package ca

import (
	"fmt"
	"sort"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3/lint"
)

// CRLLintSources are the zlint sources a CRL is checked against: RFC 5280
// and the CA/B Forum's, S/MIME and TLS alike (the S/MIME Baseline
// Requirements define no CRL lints of their own, and the TLS ones check
// what both sets of requirements share: nextUpdate, reason codes, the
// authority key identifier).
var CRLLintSources = lint.SourceList{lint.RFC5280, lint.CABFSMIMEBaselineRequirements, lint.CABFBaselineRequirements}

// CheckRevocationList lints a DER CRL with the revocation list lints of
// CRLLintSources and returns a *LintError listing every warning, error or
// fatal result, or nil when there are none. It parses the whole list, which
// for a million entries takes seconds: it is a check for tests and
// diagnosis, not a step of publishing.
func CheckRevocationList(der []byte) error {
	return checkRevocationList(der, "")
}

// CheckCARevocationList is CheckRevocationList for a CRL that covers CA
// certificates only (a root's), which the BR let run for twelve months
// rather than ten days.
func CheckCARevocationList(der []byte) error {
	return checkRevocationList(der, "[e_crl_next_update_invalid]\nSubscriberCRL = false\n")
}

func checkRevocationList(der []byte, config string) error {
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: CRLLintSources})
	if err != nil {
		return fmt.Errorf("ca: building lint registry: %w", err)
	}
	if config != "" {
		cfg, err := lint.NewConfigFromString(config)
		if err != nil {
			return fmt.Errorf("ca: lint configuration: %w", err)
		}
		reg.SetConfiguration(cfg)
	}
	lints := reg.RevocationListLints().Lints()
	if len(lints) == 0 {
		return fmt.Errorf("ca: no CRL lints in %v", CRLLintSources)
	}
	crl, err := zx509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("ca: CRL does not parse: %w", err)
	}
	var bad []Finding
	for _, l := range lints {
		r := l.Execute(crl, reg.GetConfiguration())
		if r.Status == lint.Warn || r.Status == lint.Error || r.Status == lint.Fatal {
			bad = append(bad, Finding{Lint: l.Name, Status: statusName(r.Status), Details: r.Details})
		}
	}
	if len(bad) > 0 {
		sort.Slice(bad, func(i, j int) bool { return bad[i].Lint < bad[j].Lint })
		return &LintError{Findings: bad}
	}
	return nil
}
