package outbox_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/mail"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

// clock is a settable clock shared by the store and the worker.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

// mustOpenDB opens a database at path, or a new one when path is "", and
// closes it when the test ends.
func mustOpenDB(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "db")
	}
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// enqueue adds mails to the outbox the way enrolment does, in one transaction.
func enqueue(tb testing.TB, db *sqlite.DB, mails ...enrol.Mail) {
	tb.Helper()
	err := db.InTx(context.Background(), func(tx enrol.Tx) error {
		for _, m := range mails {
			if err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("enqueue: %v", err)
	}
}

// invitations returns n invitation mails to user<i>@example.com with
// Message-IDs <inv-<i>@mailca.test>.
func invitations(n int) []enrol.Mail {
	out := make([]enrol.Mail, n)
	for i := range out {
		to := "user" + strconv.Itoa(i) + "@example.com"
		out[i] = enrol.Mail{
			Template: "invitation", To: to, MessageID: "<inv-" + strconv.Itoa(i) + "@mailca.test>",
			Data: testData("invitation", to),
		}
	}
	return out
}

// testData returns the Data that enrolment enqueues for a template, with
// the keys of internal/enrol/service.go.
func testData(template, to string) map[string]string {
	switch template {
	case "invitation", "verification", "approved":
		path := "/e/"
		if template == "approved" {
			path = "/a/"
		}
		return map[string]string{
			"Link": "https://certs.example.com" + path + "tok3n-" + template, "Expires": "15 March 2026 09:00 UTC",
			"GivenName": "Alice", "Surname": "Liddell", "Mailbox": to, "Policy": "staff",
		}
	case "application":
		return map[string]string{
			"Mailbox": "alice@example.com", "GivenName": "Alice", "Surname": "Liddell", "Policy": "staff",
			"ID": "42", "Review": "https://certs.example.com/console/enrolments/42",
		}
	case "rejected":
		return map[string]string{"Mailbox": to, "GivenName": "Alice", "Reason": "not an employee", "Policy": "staff"}
	case "issued":
		return map[string]string{
			"Mailbox": to, "GivenName": "Alice", "Serial": "7f3a9c01d2e4b5a6", "NotAfter": "14 March 2028",
			"CertificatePEM": testCertPEM,
		}
	case "revoked":
		return map[string]string{
			"Mailbox": to, "GivenName": "Alice", "Surname": "Liddell", "Serial": "7f3a9c01d2e4b5a6",
			"Reason": "its private key is known or suspected to have been compromised", "ReasonCode": "keyCompromise",
			"RevokedAt": "14 March 2027 10:30 UTC",
		}
	case "reminder":
		return map[string]string{
			"Mailbox": to, "GivenName": "Alice", "Surname": "Liddell", "Serial": "7f3a9c01d2e4b5a6", "NotAfter": "14 March 2028", "Days": "30",
			"RenewalLink": "https://certs.example.com/e/tok3n-renewal", "RenewalExpires": "28 February 2028 09:00 UTC",
		}
	case "digest":
		return map[string]string{
			"Count": "2", "Days": "30", "Date": "14 February 2028",
			"Certificates": "2028-03-01  bob@example.com  serial 1a2b3c4d5e6f7081\n2028-03-14  alice@example.com  serial 7f3a9c01d2e4b5a6\n",
		}
	}
	panic("no test data for " + template)
}

var templateNames = []string{"invitation", "verification", "application", "approved", "rejected", "issued", "revoked", "reminder", "digest"}

// testCertPEM is a throwaway self-signed certificate.
var testCertPEM = func() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber:   big.NewInt(0x7f3a9c01d2e4b5a6),
		Subject:        pkix.Name{CommonName: "Alice Liddell"},
		EmailAddresses: []string{"alice@example.com"},
		NotBefore:      time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC),
		NotAfter:       time.Date(2028, 3, 14, 0, 0, 0, 0, time.UTC),
	}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Alice Liddell"}}, &k.PublicKey, k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}()

func mustTemplates(tb testing.TB, dir string) *outbox.Templates {
	tb.Helper()
	tm, err := outbox.NewTemplates(dir)
	if err != nil {
		tb.Fatalf("NewTemplates(%q): %v", dir, err)
	}
	return tm
}

// newSender returns a mail.Sender to sink with conns connections, closed
// when the test ends.
func newSender(tb testing.TB, sink *smtpsink.Server, conns int) *mail.Sender {
	tb.Helper()
	host, port, _ := net.SplitHostPort(sink.Addr)
	p, _ := strconv.Atoi(port)
	s, err := mail.NewSender(mail.SMTPConfig{Host: host, Port: p, TLS: "none", HeloName: "mailca.test", Timeout: 10 * time.Second, Connections: conns})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newWorker returns a worker on db delivering to sink (nil: edit sets the
// Sender), with the clock c (nil for real time) and quiet logs; edit
// adjusts the config.
func newWorker(tb testing.TB, db *sqlite.DB, sink *smtpsink.Server, c *clock, edit func(*outbox.Config)) *outbox.Worker {
	tb.Helper()
	cfg := outbox.Config{
		Store:     db,
		Templates: mustTemplates(tb, ""),
		From:      mail.Address{Name: "Example Corp Certificates", Addr: "certificates@example.com"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if sink != nil {
		cfg.Sender = newSender(tb, sink, 4)
	}
	if c != nil {
		db.SetClock(c.now)
		cfg.Now = c.now
	}
	if edit != nil {
		edit(&cfg)
	}
	return outbox.NewWorker(cfg)
}

// messages returns every message in db, oldest first.
func messages(tb testing.TB, db *sqlite.DB) []outbox.Message {
	tb.Helper()
	var out []outbox.Message
	f := outbox.Filter{Limit: 1000}
	for {
		page, err := db.Messages(context.Background(), f)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		out = append(out, page...)
		f.Before = page[len(page)-1].ID
	}
	// Pages come newest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// messageIDs counts the Message-IDs of the received messages.
func messageIDs(tb testing.TB, got []smtpsink.Received) map[string]int {
	tb.Helper()
	ids := make(map[string]int)
	for _, r := range got {
		p, err := r.Parse()
		if err != nil {
			tb.Fatalf("received message does not parse: %v", err)
		}
		ids[p.Header.Get("Message-Id")]++
	}
	return ids
}

func mustCounts(tb testing.TB, db *sqlite.DB) string {
	tb.Helper()
	c, err := db.Counts(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("pending %d, sent %d, failed %d", c["pending"], c["sent"], c["failed"])
}
