package ca_test

import (
	"crypto"
	"io"
	"sync/atomic"

	"github.com/zmap/zlint/v3/lint"
)

type countingSigner struct {
	crypto.Signer
	n int64
}

func (s *countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	atomic.AddInt64(&s.n, 1)
	return s.Signer.Sign(r, d, o)
}

func smimeLints() []string {
	var names []string
	for _, l := range lint.GlobalRegistry().BySource(lint.CABFSMIMEBaselineRequirements) {
		names = append(names, l.Name)
	}
	return names
}
