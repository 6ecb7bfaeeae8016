package pki_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkOCSPHTTP measures cached OCSP answers per second over HTTP on
// loopback: mailca's whole web handler (request log, security headers,
// routing) on an httptest server, a delegated ECDSA P-256 responder, and
// clients with keep-alive connections on the same machine, asking about
// 100 certificates whose answers are in the cache. It reports resp/s.
//
//	go test -run '^$' -bench BenchmarkOCSPHTTP -benchtime 5s ./internal/web/pki/
func BenchmarkOCSPHTTP(b *testing.B) {
	s := newPKIServer(b)
	var reqs [][]byte
	for range 100 {
		reqs = append(reqs, ocspRequest(b, s.issue(b).SerialNumber, s.h.Issuer.Cert))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}}
	fetch := func(b *testing.B, req *http.Request) {
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	for _, method := range []string{"POST", "GET"} {
		b.Run(method, func(b *testing.B) {
			newReq := func(i int) *http.Request {
				if method == "POST" {
					r, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/ocsp", bytes.NewReader(reqs[i]))
					r.Header.Set("Content-Type", "application/ocsp-request")
					return r
				}
				r, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(reqs[i])), nil)
				return r
			}
			for i := range reqs { // fill the cache
				fetch(b, newReq(i))
			}
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					fetch(b, newReq(int(next.Add(1)%int64(len(reqs)))))
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "resp/s")
		})
	}
}
