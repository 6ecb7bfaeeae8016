package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/webhook"
)

// receiver records the deliveries it accepts and fails the first
// failFirst requests.
type receiver struct {
	mu        sync.Mutex
	secret    string
	failFirst int
	seen      int
	got       []delivery
	bad       []string
}

type delivery struct {
	id, typ string
	body    map[string]any
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen++
	if r.seen <= r.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(req.Body)
	if !webhook.Verify(r.secret, req.Header.Get("Mailca-Signature"), body, time.Now(), 5*time.Minute) {
		r.bad = append(r.bad, req.Header.Get("Mailca-Event-Id"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m map[string]any
	json.Unmarshal(body, &m)
	r.got = append(r.got, delivery{id: req.Header.Get("Mailca-Event-Id"), typ: req.Header.Get("Mailca-Event-Type"), body: m})
}

func token(t *testing.T, db *sqlite.DB, addr, prefix string) string {
	t.Helper()
	msgs, _ := db.Messages(context.Background(), outbox.Filter{To: addr})
	for _, m := range msgs {
		if l := m.Data["Link"]; len(l) > len(prefix) {
			if i := len("https://mailca.example"); len(l) > i && l[i:i+len(prefix)] == prefix {
				return l[i+len(prefix):]
			}
		}
	}
	t.Fatalf("no %s link to %s", prefix, addr)
	return ""
}

// TestDeliveredOnce walks enrolments through every reported transition
// and checks that the receiver gets each event once, signed, in order,
// through a failed first attempt, two dispatchers and a restart.
func TestDeliveredOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailca.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, h, db), PublicURL: "https://mailca.example", ServerKeyType: keys.ECDSAP256})
	for _, name := range []string{"test", "other"} {
		p := enrol.DefaultPolicy()
		p.Name = name
		if _, err := svc.SavePolicy(ctx, "test", p); err != nil {
			t.Fatal(err)
		}
	}
	// An event before the endpoint exists is not sent.
	svc.Invite(ctx, "admin:a", "test", enrol.Invitee{Email: "early@example.com"})
	svc.Submit(ctx, token(t, db, "early@example.com", "/e/"), enrol.Application{AcceptTerms: true, TermsVersion: "1"})

	rcv := &receiver{failFirst: 1}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	ep, err := webhook.Add(ctx, db, "cli", "test", srv.URL+"/hook?token=abc", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rcv.secret = ep.Secret

	walk := func(addr, policy string) {
		t.Helper()
		en, err := svc.Invite(ctx, "admin:a", policy, enrol.Invitee{Email: addr})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Submit(ctx, token(t, db, addr, "/e/"), enrol.Application{AcceptTerms: true, TermsVersion: "1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Approve(ctx, "admin:b", en.ID); err != nil {
			t.Fatal(err)
		}
		act, err := svc.Activate(ctx, token(t, db, addr, "/a/"), enrol.KeyServer, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Revoke(ctx, "admin:c", ca.SerialHex(act.Cert.Cert.SerialNumber), ca.ReasonSuperseded); err != nil {
			t.Fatal(err)
		}
	}
	walk("ann@example.com", "test")
	walk("ben@example.com", "other") // another policy: nothing sent

	cfg := webhook.Config{Store: db, Backoff: func(int) time.Duration { return 0 }}
	d1, d2 := webhook.NewDispatcher(cfg), webhook.NewDispatcher(cfg)
	// Two dispatchers scan and deliver at once, as two nodes would.
	var wg sync.WaitGroup
	for _, d := range []*webhook.Dispatcher{d1, d2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				d.Scan(ctx)
				d.Deliver(ctx)
			}
		}()
	}
	wg.Wait()

	// A restart: a new database handle and dispatcher find nothing to do.
	db.Close()
	if db, err = sqlite.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d3 := webhook.NewDispatcher(webhook.Config{Store: db})
	if n, err := d3.Scan(ctx); n != 0 || err != nil {
		t.Errorf("scan after restart queued %d, %v", n, err)
	}
	if n, err := d3.Deliver(ctx); n != 0 || err != nil {
		t.Errorf("deliver after restart sent %d, %v", n, err)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Errorf("deliveries with a bad signature: %v", rcv.bad)
	}
	// A retried delivery arrives after later events: receivers order by
	// the event ID, the audit sequence number.
	slices.SortFunc(rcv.got, func(a, b delivery) int { return cmpNum(a.id, b.id) })
	var types, ids []string
	for _, g := range rcv.got {
		types = append(types, g.typ)
		ids = append(ids, g.id)
		en := g.body["enrolment"].(map[string]any)
		if en["mailbox"] != "ann@example.com" || en["policy"] != "test" || g.body["type"] != g.typ || g.body["id"] != g.id {
			t.Errorf("delivery %s: %v", g.id, g.body)
		}
	}
	want := []string{"enrolment.submitted", "enrolment.approved", "enrolment.issued", "enrolment.revoked"}
	if !slices.Equal(types, want) {
		t.Fatalf("received %v, want %v", types, want)
	}
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("event IDs %v are not distinct", ids)
	}
	if rcv.seen != len(want)+1 {
		t.Errorf("receiver saw %d requests, want %d (one failed, then each event once)", rcv.seen, len(want)+1)
	}
}

func cmpNum(a, b string) int {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x - y
}

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"1"}`)
	sig := webhook.Sign("mwh_secret", now, body)
	if sig[:13] != "t=1800000000," {
		t.Fatalf("Sign = %q", sig)
	}
	cases := []struct {
		name   string
		secret string
		header string
		body   []byte
		at     time.Time
		want   bool
	}{
		{"valid", "mwh_secret", sig, body, now, true},
		{"other secret", "mwh_other", sig, body, now, false},
		{"other body", "mwh_secret", sig, []byte(`{"id":"2"}`), now, false},
		{"too old", "mwh_secret", sig, body, now.Add(10 * time.Minute), false},
		{"no timestamp", "mwh_secret", sig[13:], body, now, false},
	}
	for _, c := range cases {
		if got := webhook.Verify(c.secret, c.header, c.body, c.at, 5*time.Minute); got != c.want {
			t.Errorf("%s: Verify = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAddRefusesBadURLs(t *testing.T) {
	db := testkit.MustOpenDB(t)
	for _, u := range []string{"", "ftp://x.example/", "/relative", "https://user:pw@x.example/", "https://x.example/#frag"} {
		if _, err := webhook.Add(context.Background(), db, "cli", "test", u, time.Now()); err == nil {
			t.Errorf("Add(%q) accepted", u)
		}
	}
}

// FuzzVerify checks that Verify never panics on a received header and
// accepts no header for another body.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"1"}`)
	f.Add(webhook.Sign("s", now, body))
	f.Add("t=1800000000,v1=")
	f.Add("v1=00,t=x")
	f.Add(",,,=")
	f.Fuzz(func(t *testing.T, header string) {
		webhook.Verify("s", header, body, now, time.Minute)
		if webhook.Verify("s", header, []byte(`{"id":"2"}`), now, time.Minute) && header == webhook.Sign("s", now, body) {
			t.Fatalf("a signature verified for another body")
		}
	})
}
