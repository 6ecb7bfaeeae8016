package ca_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/testkit"
)

// BenchmarkSign measures the issuing CA key's signatures alone, with the
// key in memory (file) and in a SoftHSM2 token through PKCS#11 (pkcs11),
// for ECDSA P-256 and RSA 3072, on every core. docs/performance.md
// ("PKCS#11 (SoftHSM2)") compares them.
//
//	go test -run='^$' -bench='BenchmarkSign|BenchmarkIssuePKCS11' -benchtime=3s ./internal/ca/
func BenchmarkSign(b *testing.B) {
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA3072} {
		b.Run(string(kt), func(b *testing.B) {
			file := testkit.NewHierarchy(b, kt)
			token, _ := testkit.NewTokenHierarchy(b, kt)
			b.Run("file", func(b *testing.B) { benchSign(b, file.Issuer.Signer) })
			b.Run("pkcs11", func(b *testing.B) { benchSign(b, token.Issuer.Signer) })
		})
	}
}

func benchSign(b *testing.B, s crypto.Signer) {
	digest := sha256.Sum256([]byte("mailca benchmark"))
	b.ResetTimer()
	start, ok := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	end, ok2 := processCPU()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
	if ok && ok2 {
		b.ReportMetric(float64((end-start).Microseconds())/float64(b.N), "cpu-us/sig")
	}
}

// BenchmarkIssuePKCS11 is BenchmarkIssue's raw and issue with the issuing
// CA key in memory (file) and in a SoftHSM2 token (pkcs11), side by side.
func BenchmarkIssuePKCS11(b *testing.B) {
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.RSA3072} {
		b.Run(string(kt), func(b *testing.B) {
			file := testkit.NewHierarchy(b, kt)
			token, _ := testkit.NewTokenHierarchy(b, kt)
			for _, c := range []struct {
				name string
				h    *testkit.Hierarchy
			}{{"file", file}, {"pkcs11", token}} {
				b.Run(c.name+"/raw", func(b *testing.B) { benchRaw(b, c.h) })
				b.Run(c.name+"/issue", func(b *testing.B) { benchIssue(b, c.h, false) })
			}
		})
	}
}
