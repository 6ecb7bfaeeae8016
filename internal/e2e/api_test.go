package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/webhook"
)

// hookReceiver is a webhook receiver on loopback that checks signatures
// and counts each event.
type hookReceiver struct {
	mu     sync.Mutex
	secret string
	byID   map[string]int
	types  map[string]string // event ID -> type
	bad    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !webhook.Verify(h.secret, r.Header.Get("Mailca-Signature"), body, time.Now(), 5*time.Minute) {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct{ ID, Type string }
	if json.Unmarshal(body, &p) != nil || p.ID != r.Header.Get("Mailca-Event-Id") {
		h.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.byID[p.ID]++
	h.types[p.ID] = p.Type
}

// waitFor waits until an event of type typ has arrived.
func (h *hookReceiver) waitFor(t *testing.T, in *instance, typ string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, ty := range h.types {
			if ty == typ {
				h.mu.Unlock()
				return
			}
		}
		h.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no webhook %s arrived; serve log:\n%s", typ, in.logs)
}

// apiCall calls the API of in with key and decodes a JSON answer into out.
func apiCall(t *testing.T, in *instance, key, method, path string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, in.base+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d\n%s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
}

// TestAPIEnrolmentWithWebhooks walks an enrolment with the API on the
// administrator's side and the pages on the user's, with mailca serve
// stopped and started in the middle, and checks that a webhook receiver
// gets each event exactly once with a valid signature.
func TestAPIEnrolmentWithWebhooks(t *testing.T) {
	in := newInstance(t)
	policy := filepath.Join(t.TempDir(), "staff.yaml")
	os.WriteFile(policy, []byte(`name: staff
channels: {invitation: true}
approval: {mode: manual}
key_modes: [server]
profile: mailbox-strict
terms: {version: "1", text: "I will guard my key."}
fields:
  - {name: given_name, label: Given name, editable: true}
  - {name: surname, label: Surname, editable: true}
`), 0o600)
	in.mailca("policy", "import", "--dir", in.dir, policy)
	key := strings.TrimSpace(in.mailca("apikey", "create", "--dir", in.dir, "--name", "hr", "--scope", "invite,approve,revoke,read", "--policy", "staff", "--expires", "30d"))
	if !strings.HasPrefix(key, "mca_") {
		t.Fatalf("apikey create printed %q", key)
	}
	if list := in.mailca("apikey", "list", "--dir", in.dir); !strings.Contains(list, "hr") || strings.Contains(list, key) {
		t.Fatalf("apikey list:\n%s", list)
	}

	rcv := &hookReceiver{byID: map[string]int{}, types: map[string]string{}}
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()
	rcv.secret = strings.TrimSpace(in.mailca("webhook", "add", "--dir", in.dir, "--policy", "staff", "--url", hooks.URL+"/mailca"))
	if !strings.HasPrefix(rcv.secret, webhook.SecretPrefix) {
		t.Fatalf("webhook add printed %q", rcv.secret)
	}
	in.start()

	// The API's own document needs no key.
	if resp, err := http.Get(in.base + "/api/v1/openapi.json"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("openapi.json: %v %v", resp, err)
	}

	// 1. Invite with the API; the user submits the form.
	var en struct {
		ID     int64
		State  string
		Serial string
	}
	apiCall(t, in, key, "POST", "/invitations", map[string]string{"policy": "staff", "email": "eve@example.com", "given_name": "Eve"}, 201, &en)
	submitForm(t, in.mailTo("eve@example.com", "invitation").link(t), "Eve", "Ray")
	rcv.waitFor(t, in, "enrolment.submitted")

	// 2. mailca stops; the approval comes from the command line meanwhile;
	// after the restart the webhook follows.
	in.stop()
	in.mailca("approve", "--dir", in.dir, strconv.FormatInt(en.ID, 10))
	in.start()
	rcv.waitFor(t, in, "enrolment.approved")

	// 3. The user activates; the API shows the certificate.
	activateServer(t, in.mailTo("eve@example.com", "approved").link(t))
	rcv.waitFor(t, in, "enrolment.issued")
	apiCall(t, in, key, "GET", "/enrolments/"+strconv.FormatInt(en.ID, 10), nil, 200, &en)
	if en.State != "issued" || en.Serial == "" {
		t.Fatalf("enrolment after activation: %+v", en)
	}

	// 4. Another restart, then revocation with the API.
	in.stop()
	in.start()
	apiCall(t, in, key, "POST", "/certificates/"+en.Serial+"/revoke", map[string]string{"reason": "cessationOfOperation"}, 200, nil)
	rcv.waitFor(t, in, "enrolment.revoked")

	// Each event once: four deliveries, all recorded as delivered, so
	// none is pending to be sent again.
	in.stop()
	rcv.mu.Lock()
	if rcv.bad != 0 || len(rcv.byID) != 4 {
		t.Errorf("receiver: %d bad, events %v", rcv.bad, rcv.types)
	}
	for id, n := range rcv.byID {
		if n != 1 {
			t.Errorf("event %s (%s) arrived %d times", id, rcv.types[id], n)
		}
	}
	rcv.mu.Unlock()
	deliveries := in.mailca("webhook", "deliveries", "--dir", in.dir)
	if strings.Count(deliveries, "delivered") != 4 || strings.Contains(deliveries, "pending") {
		t.Errorf("webhook deliveries:\n%s", deliveries)
	}

	// A revoked key stops working at its next request.
	in.start()
	apiCall(t, in, key, "GET", "/enrolments", nil, 200, nil)
	in.mailca("apikey", "revoke", "--dir", in.dir, "hr")
	apiCall(t, in, key, "GET", "/enrolments", nil, 401, nil)
	in.stop()
	checkNoSecretsLogged(t, in, []string{key, rcv.secret})
}
