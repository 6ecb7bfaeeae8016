package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/web"
)

// BenchmarkEnrolmentHTTP measures whole enrolments per second on the
// embedded default with an ECDSA P-256 CA: invitation, the form over HTTP,
// automatic approval, and activation with a CSR over HTTP, up to the issued
// certificate. Both cores are kept busy by parallel users.
func BenchmarkEnrolmentHTTP(b *testing.B) {
	db := testkit.MustOpenDB(b)
	h := testkit.NewHierarchy(b, keys.ECDSAP256)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(b, h, db), PublicURL: "http://bench.example.com"})
	ctx := context.Background()
	p := enrol.DefaultPolicy()
	p.Name = "bench"
	p.Approval.Mode = enrol.ApproveAutomatic
	if _, err := svc.SavePolicy(ctx, "bench", p); err != nil {
		b.Fatal(err)
	}
	handler, err := web.New(web.Config{Enrol: svc, ChainPEM: h.Issuer.ChainPEM()})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64

	// Subscriber keys are the users' work, not the server's: make them first.
	csrs := make([]string, b.N)
	for i := range csrs {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			b.Fatal(err)
		}
		csrs[i] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	var next atomic.Int64
	token := func(addr, prefix string) string {
		msgs, err := db.Messages(ctx, outbox.Filter{To: addr})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			if l := m.Data["Link"]; strings.Contains(l, prefix) {
				return l[strings.LastIndex(l, "/")+1:]
			}
		}
		b.Fatalf("no %s link for %s", prefix, addr)
		return ""
	}
	do := func(method, path string, form url.Values) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s %s = %d", method, path, resp.StatusCode)
		}
	}

	b.SetParallelism(4) // users waiting on the network while others are served
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			addr := fmt.Sprintf("user%d@example.com", i)
			if _, err := svc.Invite(ctx, "bench", "bench", enrol.Invitee{Email: addr}); err != nil {
				b.Fatal(err)
			}
			form := "/e/" + token(addr, "/e/")
			do("GET", form, nil)
			do("POST", form, url.Values{"f_given_name": {"U"}, "f_surname": {"Ser"}, "terms_version": {"1"}, "accept_terms": {"yes"}})
			act := "/a/" + token(addr, "/a/")
			do("GET", act, nil)
			do("POST", act, url.Values{"mode": {"csr"}, "csr": {csrs[i]}})
		}
	})
	b.StopTimer()
	// Process CPU per enrolment (client and server share the process) is
	// steadier than the rate when other work shares the machine.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/enrolment")
	counts, _ := db.CountCertificates(ctx)
	if counts["issued"] != b.N {
		b.Fatalf("%d certificates for %d enrolments", counts["issued"], b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enrolments/s")
}

// processCPU returns the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
