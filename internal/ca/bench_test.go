package ca_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/testkit"
)

// BenchmarkIssue measures issuance (lint, sign, store) for each issuing CA
// key type, next to the rate at which the same key signs an equivalent
// certificate with nothing around it. All run on every core
// (b.RunParallel); docs/performance.md compares them.
//
// Sub-benchmarks, per CA key type:
//
//   - raw: x509.CreateCertificate alone;
//   - issue: Engine.Issue for a subscriber key known in advance;
//   - issue-csr: ParseCSR (which checks the CSR's signature) and then
//     Engine.Issue, the whole path of a CSR upload.
//
// Besides certs/s each reports cpu-us/cert, the CPU time the process spent
// per certificate: on a machine shared with other work the wall-clock rate
// moves with the neighbours' load, the CPU time much less.
//
//	go test -run='^$' -bench=BenchmarkIssue -benchtime=3s -count=3 ./internal/ca/
func BenchmarkIssue(b *testing.B) {
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA3072} {
		b.Run(string(kt), func(b *testing.B) {
			// One hierarchy per CA key type: RSA-3072 keys take long to
			// generate, and the sub-benchmarks run several times.
			h := testkit.NewHierarchy(b, kt)
			b.Run("raw", func(b *testing.B) { benchRaw(b, h) })
			b.Run("issue", func(b *testing.B) { benchIssue(b, h, false) })
			b.Run("issue-csr", func(b *testing.B) { benchIssue(b, h, true) })
		})
	}
}

// benchRaw signs, with the issuing CA key, a template equal to what the
// engine signs: a certificate issued by the engine, which
// x509.CreateCertificate accepts as a template.
func benchRaw(b *testing.B, h *testkit.Hierarchy) {
	engine := testkit.NewEngine(b, h, testkit.MustOpenDB(b))
	sub := keys.MustGenerate(keys.ECDSAP256)
	c, err := engine.Issue(context.Background(), ca.Request{PublicKey: sub.Public(), Mailbox: benchMailbox(b, 0)})
	if err != nil {
		b.Fatal(err)
	}
	tmpl := c.Cert
	cpu := startCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := x509.CreateCertificate(rand.Reader, tmpl, h.Issuer.Cert, sub.Public(), h.Issuer.Signer); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu.report(b)
}

// benchIssue issues b.N certificates into a fresh SQLite database, each for
// its own ECDSA P-256 key (the store refuses a key in two certificates).
// Keys, and CSRs when fromCSR is set, are made before the timer starts.
func benchIssue(b *testing.B, h *testkit.Hierarchy, fromCSR bool) {
	engine := testkit.NewEngine(b, h, testkit.MustOpenDB(b))
	ctx := context.Background()
	// Issue one certificate first so that the linter's throwaway key (slow
	// to make for RSA) exists before timing.
	if _, err := engine.Issue(ctx, ca.Request{PublicKey: keys.MustGenerate(keys.ECDSAP256).Public(), Mailbox: benchMailbox(b, 0)}); err != nil {
		b.Fatal(err)
	}
	subs := benchSubscribers(b, b.N, fromCSR)
	var next atomic.Int64
	cpu := startCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s := subs[next.Add(1)-1]
			pub := s.pub
			if fromCSR {
				csr, err := ca.ParseCSR(s.csr)
				if err != nil {
					b.Error(err)
					return
				}
				pub = csr.PublicKey
			}
			if _, err := engine.Issue(ctx, ca.Request{PublicKey: pub, Mailbox: s.mailbox}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	cpu.report(b)
}

type benchSubscriber struct {
	pub     crypto.PublicKey
	csr     []byte // DER, when asked for
	mailbox mailbox.Address
}

// benchSubscribers returns n subscribers with distinct keys and mailboxes,
// made on every core.
func benchSubscribers(b *testing.B, n int, withCSR bool) []benchSubscriber {
	b.Helper()
	out := make([]benchSubscriber, n)
	var (
		wg      sync.WaitGroup
		failed  atomic.Bool
		workers = runtime.GOMAXPROCS(0)
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				k := keys.MustGenerate(keys.ECDSAP256)
				out[i].pub = k.Public()
				if withCSR {
					der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
					if err != nil {
						failed.Store(true)
						return
					}
					out[i].csr = der
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		b.Fatal("making CSRs failed")
	}
	for i := range out {
		out[i].mailbox = benchMailbox(b, i+1)
	}
	return out
}

func benchMailbox(b *testing.B, i int) mailbox.Address {
	b.Helper()
	a, err := mailbox.Parse(fmt.Sprintf("user%d@example.org", i))
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// cpuMeter measures the process's CPU time over the timed part of a
// benchmark.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

// startCPU resets the benchmark timer and starts measuring CPU time.
func startCPU(b *testing.B) cpuMeter {
	b.ResetTimer()
	start, ok := processCPU()
	return cpuMeter{start, ok}
}

// report stops the timer and reports certs/s and, where the platform tells
// it, cpu-us/cert.
func (m cpuMeter) report(b *testing.B) {
	b.StopTimer()
	end, ok := processCPU()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
	if m.ok && ok {
		b.ReportMetric(float64((end-m.start).Microseconds())/float64(b.N), "cpu-us/cert")
	}
}
