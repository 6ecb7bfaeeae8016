// Several mailca nodes on one PostgreSQL database.
//
// TestMultiNode and TestMultiNodeOneActivation run three mailca serve
// processes on one data directory (the same configuration file and CA key,
// as every node of a deployment shares them) whose database is a schema of
// its own on the PostgreSQL server at MAILCA_TEST_POSTGRES_URL. All three
// deliver through one loopback SMTP server, and the test plays the load
// balancer, sending each request to the next node in turn. Without a
// PostgreSQL server they are skipped, and under CI=true they fail.

package e2e_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/testkit/smtpsink"
)

const (
	// mnInvitations is how many people TestMultiNode invites through the
	// first node, in two CSV uploads.
	mnInvitations = 10000
	// mnEnrolments is how many of them then enrol, in the order invited:
	// the form, approval and activation, through all the nodes.
	mnEnrolments = 10000
	// mnManualEvery: every so many enrolees is in a domain the policy does
	// not approve automatically, so an approver runs 'mailca approve'.
	mnManualEvery = 20
	// mnServerKeyEvery: every so many enrolees activates with a key made by
	// mailca, delivered as PKCS#12; the others send a CSR.
	mnServerKeyEvery = 10
	// mnUsers is how many simulated users are at work at once.
	mnUsers = 24
)

// multiNodePolicy approves auto.example.com at once and waits for an
// approver for every other domain.
const multiNodePolicy = `name: staff
channels: {invitation: true}
approval: {mode: automatic-domains, domains: [auto.example.com]}
notify: [ra@example.com]
key_modes: [server, csr]
profile: mailbox-strict
terms: {version: "1", text: "I will guard my key."}
fields:
  - {name: given_name, label: Given name, editable: true}
  - {name: surname, label: Surname, editable: true}
`

// TestMultiNode proves that several stateless nodes on one PostgreSQL
// database lose nothing and do nothing twice, even when one of them dies:
//
//   - 10,000 people are invited through the first node's configuration
//     ('mailca invite', the CLI upload of a CSV file), in two uploads of
//     5,000, and all 10,000 complete their enrolment, 24 at a time, each
//     request going to the next of the three nodes in turn: the form;
//     approval, automatic for most, and for one in 20 by an approver who
//     runs 'mailca approve' on the notice it receives; activation, for one
//     in ten with a key mailca makes (PKCS#12), for the others with a CSR.
//   - When two fifths of the enrolments are done the second upload starts,
//     and when its first 500 invitations have arrived, the second node is
//     killed with SIGKILL while it holds SMTP connections, outbox leases,
//     database transactions and requests; it is started again a second
//     later. The users' requests it was answering are sent again to the
//     next node, as a load balancer would; an activation whose link the
//     dead node spent is completed with a new link ('mailca resend'), which
//     records the certificate the dead node signed, if it did, rather than
//     issue another.
//   - Counted at the SMTP server: each of the 10,000 people received exactly
//     one invitation, each enrolee one notice of issuance, and no message
//     was delivered twice except, at most once per SMTP connection of the
//     killed node, one caught between the server's acceptance and mailca's
//     record of it, repeated with the same Message-ID (as in
//     TestCrashDuringImportAndDelivery).
//   - In the database: every approved enrolment is issued and has exactly
//     one certificate, the one it names and the one its user received, and
//     no other subscriber certificate exists (each node has its OCSP
//     responder's); the serial numbers are unique.
//   - CRLs: each node's CRL before the run is older than any served after
//     it. After three certificates are revoked, three CRLs made one after
//     the other ('mailca crl') are each served by the next node, in
//     strictly increasing numbers, signed by the issuing CA and listing the
//     revoked serials.
//
// It takes two and a half minutes on a busy two-core machine (five when
// other tests keep both cores fully loaded); -short skips it.
func TestMultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 invitations on three nodes: not with -short")
	}
	start := time.Now()
	c := newCluster(t, 3, multiNodePolicy)
	crlPath := c.crlPath()
	var crlsBefore []int64
	for i := range c.nodes {
		crlsBefore = append(crlsBefore, c.crl(i, nil).Number.Int64())
	}

	// 1. Invite the first batch, those who will enrol, through the first
	// node's configuration.
	uploadCSV := func(from, to int) (string, error) {
		var csv strings.Builder
		csv.WriteString("email,given name,surname\n")
		for i := from; i < to; i++ {
			fmt.Fprintf(&csv, "%s,User,N%d\n", mnAddress(i), i)
		}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("staff-%d.csv", from))
		if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
			return "", err
		}
		out, err := exec.Command(mailcaBin, "invite", "--dir", c.nodes[0].dir, "--policy", "staff", path).Output()
		if n := strings.Count(string(out), ",invited,"); err == nil && n != to-from {
			err = fmt.Errorf("mailca invite invited %d of %d", n, to-from)
		}
		return string(out), err
	}
	const firstUpload = mnInvitations / 2
	if _, err := uploadCSV(0, firstUpload); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d invited at %s", firstUpload, time.Since(start).Round(time.Millisecond))

	// 2. The users and the approvers.
	users := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	var interrupted []string
	serials := map[string]string{} // mailbox -> serial of the certificate the user got
	for range mnUsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range users {
				mu.Lock()
				stop := len(failures) >= 10
				mu.Unlock()
				if stop {
					continue // fail in minutes, not hours
				}
				addr := mnAddress(i)
				serial, err := c.enrol(addr, i%mnServerKeyEvery == 1)
				mu.Lock()
				switch {
				case errors.Is(err, errActivationCut):
					interrupted = append(interrupted, addr)
				case err != nil:
					failures = append(failures, fmt.Errorf("%s: %w", addr, err))
				default:
					serials[addr] = serial
				}
				mu.Unlock()
			}
		}()
	}
	approverDone := make(chan struct{})
	var approved atomic.Int64
	var approvers sync.WaitGroup
	for range 2 {
		approvers.Add(1)
		go func() {
			defer approvers.Done()
			for {
				select {
				case id := <-c.mail.applications:
					if out, err := exec.Command(mailcaBin, "approve", "--dir", c.nodes[0].dir, "--as", "ra", strconv.FormatInt(id, 10)).CombinedOutput(); err != nil {
						mu.Lock()
						failures = append(failures, fmt.Errorf("mailca approve %d: %v\n%s", id, err, out))
						mu.Unlock()
						continue
					}
					approved.Add(1)
				case <-approverDone:
					return
				}
			}
		}()
	}

	// 3. Half-way through the enrolments, invite the second batch, and
	// kill a node when its invitations are being delivered.
	go func() {
		for i := range mnEnrolments {
			users <- i
		}
		close(users)
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Minute); !cond(); {
			mu.Lock()
			failed := errors.Join(failures...)
			mu.Unlock()
			if failed != nil || time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %d certificates received after %s, %d requests sent again after %s without an answer; failures: %v",
					what, c.mail.distinct(kindIssued), time.Since(start).Round(time.Second), c.cut.Load(), c.client.Timeout, failed)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("two fifths of the enrolments", func() bool { return c.mail.distinct(kindIssued) >= mnEnrolments*2/5 })
	uploaded := make(chan error, 1)
	go func() {
		_, err := uploadCSV(firstUpload, mnInvitations)
		uploaded <- err
	}()
	waitFor("the second upload's first invitations", func() bool { return c.mail.distinct(kindInvitation) >= firstUpload+500 })
	killedAt := time.Now()
	c.nodes[1].kill()
	t.Logf("node 2 killed at %s: %d invitations delivered, %d certificates received",
		killedAt.Sub(start).Round(time.Millisecond), c.mail.distinct(kindInvitation), c.mail.distinct(kindIssued))
	time.Sleep(time.Second)
	c.nodes[1].start()
	t.Logf("node 2 serving again after %s", time.Since(killedAt).Round(time.Millisecond))
	if err := <-uploaded; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d invited at %s", mnInvitations, time.Since(start).Round(time.Millisecond))

	wg.Wait()
	close(approverDone)
	approvers.Wait()
	t.Logf("users done at %s: %d certificates received, %d approved by 'mailca approve', %d requests cut off by the kill, %d activations to complete, %d failures",
		time.Since(start).Round(time.Millisecond), len(serials), approved.Load(), c.cut.Load(), len(interrupted), len(failures))
	for i, err := range failures {
		if i == 10 {
			t.Errorf("... and %d more failures", len(failures)-10)
			break
		}
		t.Error(err)
	}

	// 4. An activation cut off by the kill has spent its link and may or
	// may not have issued: the user asks for a new link and activates.
	for _, addr := range interrupted {
		serials[addr] = c.reactivate(addr)
	}

	// 5. Revoke a few, so that the nodes make CRLs while serving.
	var revoked []string
	for _, s := range serials {
		if len(revoked) == 3 {
			break
		}
		c.nodes[2].mailca("revoke", "--dir", c.nodes[0].dir, "--serial", s, "--reason", "superseded")
		revoked = append(revoked, s)
	}

	// 6. Wait until the outbox is empty, then for any late repeat.
	c.waitOutboxSent(2 * time.Minute)
	time.Sleep(time.Second)
	t.Logf("outbox delivered at %s", time.Since(start).Round(time.Millisecond))

	// Every invitation once; at most smtpConnections repeats, by the killed node.
	if n := c.mail.distinct(kindInvitation); n != mnInvitations {
		t.Errorf("%d distinct invitations delivered, want %d", n, mnInvitations)
	}
	wrong := 0
	for i := range mnInvitations {
		if n := c.mail.count(kindInvitation, mnAddress(i)); n != 1 {
			if wrong++; wrong <= 10 {
				t.Errorf("%s received %d invitations, want 1", mnAddress(i), n)
			}
		}
	}
	for addr := range serials {
		if n := c.mail.count(kindIssued, addr); n != 1 {
			if wrong++; wrong <= 10 {
				t.Errorf("%s received %d issued notices, want 1", addr, n)
			}
		}
	}
	if wrong > 10 {
		t.Errorf("... %d recipients in all received a wrong number of messages", wrong)
	}
	messages, repeated := c.mail.deliveries()
	t.Logf("SMTP sink: %d messages, %d distinct Message-IDs, %d repeated; by kind %v", messages, messages-repeated, repeated, c.mail.kinds())
	if repeated > smtpConnections {
		t.Errorf("%d deliveries repeated; at most %d (one per SMTP connection of the killed node) can be", repeated, smtpConnections)
	}
	c.mail.check(t)

	// Exactly one certificate per approved enrolment, serials unique.
	if len(serials) != mnEnrolments {
		t.Errorf("%d users got a certificate, want %d", len(serials), mnEnrolments)
	}
	c.checkCertificates(serials)

	// 7. CRLs: newer than before on every node, increasing across nodes,
	// listing the revoked serials.
	last := slices.Max(crlsBefore)
	for i := range c.nodes {
		made := c.makeCRL()
		if made <= last {
			t.Errorf("mailca crl made CRL %d after CRL %d was served", made, last)
		}
		crl := c.crl(i, func(n int64) bool { return n >= made })
		got := crl.Number.Int64()
		if got <= last {
			t.Errorf("node %d serves CRL %d after CRL %d was served", i+1, got, last)
		}
		listed := map[string]bool{}
		for _, e := range crl.RevokedCertificateEntries {
			listed[e.SerialNumber.Text(16)] = true
		}
		for _, s := range revoked {
			if !listed[s] {
				t.Errorf("CRL %d from node %d does not list the revoked %s", got, i+1, s)
			}
		}
		t.Logf("node %d serves CRL %d (%d entries) from %s; before the run the nodes served %v", i+1, got, len(crl.RevokedCertificateEntries), crlPath, crlsBefore)
		last = got
	}
	for _, in := range c.nodes {
		in.stop()
	}
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}

// TestMultiNodeOneActivation sends 1,000 activations of one link at once,
// spread over three nodes: exactly one gets the PKCS#12 and the others the
// page saying the link does not work, and the database holds exactly one
// certificate.
func TestMultiNodeOneActivation(t *testing.T) {
	c := newCluster(t, 3, `name: staff
channels: {invitation: true}
approval: {mode: automatic}
key_modes: [server]
terms: {version: "1", text: "ok"}
`)
	const addr, requests = "gil@example.com", 1000
	c.nodes[0].mailca("invite", "--dir", c.nodes[0].dir, "--policy", "staff", "--email", addr)
	form, err := c.mail.link(kindInvitation, addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := c.do(0, "POST", form, url.Values{"f_given_name": {"Gil"}, "terms_version": {"1"}, "accept_terms": {"yes"}}); err != nil || code != 200 {
		t.Fatalf("form: %d %v\n%s", code, err, body)
	}
	act, err := c.mail.link(kindApproved, addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	type answer struct {
		node, code int
		body       string
		err        error
	}
	answers := make(chan answer, requests)
	ready, fire := sync.WaitGroup{}, make(chan struct{})
	for i := range requests {
		ready.Add(1)
		go func() {
			n := i % len(c.nodes)
			ready.Done()
			<-fire
			code, body, err := c.do(n, "POST", act, url.Values{"mode": {"server"}})
			answers <- answer{n, code, body, err}
		}()
	}
	ready.Wait()
	close(fire)
	won, spent := map[int]int{}, 0
	for range requests {
		a := <-answers
		switch {
		case a.err != nil:
			t.Errorf("node %d: %v", a.node+1, a.err)
		case a.code == 200:
			won[a.node]++
			pw, data := passwordRE.FindStringSubmatch(a.body), p12RE.FindStringSubmatch(a.body)
			if pw == nil || data == nil {
				t.Errorf("node %d answered 200 without a PKCS#12:\n%s", a.node+1, a.body)
				continue
			}
			der, err := base64.StdEncoding.DecodeString(html.UnescapeString(data[1]))
			if err != nil {
				t.Fatal(err)
			}
			if _, leaf, _, err := pkcs12.DecodeChain(der, html.UnescapeString(pw[1])); err != nil || leaf.EmailAddresses[0] != addr {
				t.Errorf("PKCS#12 from node %d: %v", a.node+1, err)
			}
		case a.code == 404 && strings.Contains(a.body, "This link does not work"):
			spent++
		default:
			t.Errorf("node %d answered %d:\n%.400s", a.node+1, a.code, a.body)
		}
	}
	t.Logf("%d requests: PKCS#12 from nodes %v, the spent-link page %d times", requests, won, spent)
	if len(won) != 1 || spent != requests-1 {
		t.Errorf("%v won and %d found the link spent; want one winner and %d", won, spent, requests-1)
	}
	var certs, issued int
	if err := c.db.QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE state = 'issued') FROM certificates WHERE state <> 'refused' AND profile <> $1`, ca.ResponderProfile).Scan(&certs, &issued); err != nil {
		t.Fatal(err)
	}
	if certs != 1 || issued != 1 {
		t.Errorf("%d subscriber certificates (%d issued) in the database, want 1", certs, issued)
	}
	for _, in := range c.nodes {
		in.stop()
	}
}

// mnAddress is the mailbox of the i-th enrolee; one in mnManualEvery is in
// a domain that needs an approver.
func mnAddress(i int) string {
	if i%mnManualEvery == 0 {
		return fmt.Sprintf("user%05d@manual.example.com", i)
	}
	return fmt.Sprintf("user%05d@auto.example.com", i)
}

// postgresURL creates a schema of its own for the test on the server at
// MAILCA_TEST_POSTGRES_URL and returns a URL whose connections use it. The
// schema is dropped when the test ends. Without a server the test is
// skipped, or fails under CI=true.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MAILCA_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withoutPoolParams(base))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no PostgreSQL server (MAILCA_TEST_POSTGRES_URL): %v", err)
		}
		t.Skipf("no PostgreSQL server (MAILCA_TEST_POSTGRES_URL): %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "mailca_mn_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, withoutPoolParams(base))
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// withoutPoolParams drops the pgxpool settings (pool_max_conns and the
// like) that MAILCA_TEST_POSTGRES_URL may pass to the nodes from the URL
// of the test's own connections, which would send them to the server.
func withoutPoolParams(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// cluster is one data directory on PostgreSQL served by several mailca
// serve processes. The test plays the load balancer: no node is preferred.
type cluster struct {
	t      *testing.T
	nodes  []*instance
	mail   *mailTally
	db     *pgx.Conn // for the test goroutine only
	client *http.Client
	next   atomic.Uint64
	cut    atomic.Int64 // requests sent again after an attempt got no answer

	issuing *x509.Certificate // read by issuer
}

// newCluster initialises a data directory on a new PostgreSQL schema, with
// policy imported, and starts n nodes on it that share its configuration,
// its CA key and one SMTP server. Links in emails name the first node; the
// test sends them to any.
func newCluster(t *testing.T, n int, policy string) *cluster {
	t.Helper()
	dbURL := postgresURL(t)
	tally := newMailTally()
	first := newInstance(t, smtpsink.WithDiscard(), smtpsink.WithObserver(tally.observe))
	first.useDatabase(dbURL)
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	first.mailca("policy", "import", "--dir", first.dir, policyPath)
	c := &cluster{t: t, nodes: []*instance{first}, mail: tally,
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * mnUsers}}}
	for range n - 1 {
		addr := freeAddr(t)
		c.nodes = append(c.nodes, &instance{t: t, dir: first.dir, addr: addr, base: "http://" + addr, sink: first.sink})
	}
	for _, in := range c.nodes {
		in.start()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, withoutPoolParams(dbURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	c.db = db
	return c
}

// useDatabase points the data directory at the database of dbURL and
// creates its schema there.
func (in *instance) useDatabase(dbURL string) {
	in.t.Helper()
	cfgPath := filepath.Join(in.dir, "mailca.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		in.t.Fatal(err)
	}
	cfg := strings.Replace(string(b), `url = "sqlite:mailca.db"`, fmt.Sprintf("url = %q", dbURL), 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		in.t.Fatal(err)
	}
	in.mailca("migrate", "--dir", in.dir)
}

// do sends one request for the path of link to node n.
func (c *cluster) do(n int, method, link string, form url.Values) (int, string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return 0, "", err
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.nodes[n].base+u.Path, body)
	if err != nil {
		return 0, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// send sends a request to the next node in turn, and on to the nodes
// after it when a node does not answer, as a load balancer does. cut
// reports that an attempt got no answer after the request may have reached
// a node: a POST may then have been carried out, and the answer is that of
// the repeat.
func (c *cluster) send(method, link string, form url.Values) (code int, body string, cut bool, err error) {
	first := c.next.Add(1)
	for i := range uint64(2 * len(c.nodes)) {
		code, body, err = c.do(int((first+i)%uint64(len(c.nodes))), method, link, form)
		if err == nil {
			return code, body, cut, nil
		}
		if !isRefused(err) && !cut {
			cut = true
			c.cut.Add(1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, "", cut, err
}

func isRefused(err error) bool {
	return strings.Contains(err.Error(), "connection refused")
}

// errActivationCut marks an activation whose request was cut off by the
// kill and whose link was spent by it.
var errActivationCut = errors.New("activation cut off")

// enrol plays one user from the invitation to the certificate and returns
// its serial number. A user in a manual domain waits for the approvers.
func (c *cluster) enrol(addr string, serverKey bool) (string, error) {
	form, err := c.mail.link(kindInvitation, addr, 2*time.Minute)
	if err != nil {
		return "", err
	}
	if code, body, _, err := c.send("GET", form, nil); err != nil || code != 200 {
		return "", fmt.Errorf("GET form: %d %v\n%.300s", code, err, body)
	}
	code, body, cut, err := c.send("POST", form, url.Values{"f_given_name": {"User"}, "f_surname": {"N"}, "terms_version": {"1"}, "accept_terms": {"yes"}})
	// A form post cut off that had been carried out leaves the link spent.
	if err != nil || code != 200 && !(cut && code == 404) {
		return "", fmt.Errorf("POST form: %d %v\n%.300s", code, err, body)
	}
	act, err := c.mail.link(kindApproved, addr, 2*time.Minute)
	if err != nil {
		return "", err
	}
	return c.activate(act, serverKey)
}

// activate GETs and POSTs the activation link and returns the serial of
// the certificate on the page.
func (c *cluster) activate(act string, serverKey bool) (string, error) {
	if code, body, _, err := c.send("GET", act, nil); err != nil || code != 200 {
		return "", fmt.Errorf("GET activation: %d %v\n%.300s", code, err, body)
	}
	form := url.Values{"mode": {"server"}}
	if !serverKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			return "", err
		}
		form = url.Values{"mode": {"csr"}, "csr": {string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}}
	}
	code, body, cut, err := c.send("POST", act, form)
	switch {
	case cut && code == 404:
		return "", errActivationCut
	case err != nil || code != 200:
		return "", fmt.Errorf("POST activation: %d %v\n%.300s", code, err, body)
	}
	var leaf *x509.Certificate
	if serverKey {
		pw, data := passwordRE.FindStringSubmatch(body), p12RE.FindStringSubmatch(body)
		if pw == nil || data == nil {
			return "", fmt.Errorf("no PKCS#12 on the activation page:\n%.300s", body)
		}
		der, err := base64.StdEncoding.DecodeString(html.UnescapeString(data[1]))
		if err != nil {
			return "", err
		}
		if _, leaf, _, err = pkcs12.DecodeChain(der, html.UnescapeString(pw[1])); err != nil {
			return "", err
		}
	} else {
		m := certRE.FindStringSubmatch(body)
		if m == nil {
			return "", fmt.Errorf("no certificate on the activation page:\n%.300s", body)
		}
		b, _ := pem.Decode([]byte(html.UnescapeString(m[1])))
		if b == nil {
			return "", errors.New("the certificate on the activation page is not PEM")
		}
		if leaf, err = x509.ParseCertificate(b.Bytes); err != nil {
			return "", err
		}
	}
	return leaf.SerialNumber.Text(16), nil
}

// reactivate completes an enrolment whose activation was cut off: when the
// cut-off request did not issue, the user asks for a new link ('mailca
// resend') and activates again. It returns the serial of the enrolment's
// certificate.
func (c *cluster) reactivate(addr string) string {
	c.t.Helper()
	ctx := context.Background()
	var id int64
	var state string
	if err := c.db.QueryRow(ctx, `SELECT id, state FROM enrolments WHERE mailbox = $1`, addr).Scan(&id, &state); err != nil {
		c.t.Fatalf("enrolment of %s: %v", addr, err)
	}
	if state == "approved" {
		c.nodes[0].mailca("resend", "--dir", c.nodes[0].dir, strconv.FormatInt(id, 10))
		act, err := c.mail.link(kindApproved, addr, time.Minute)
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := c.activate(act, false); err != nil {
			// A certificate signed by the cut-off request is recorded now,
			// and the user is told it was sent by email.
			first, _, _ := strings.Cut(err.Error(), "\n")
			c.t.Logf("%s: activating again: %s", addr, first)
		}
	}
	var serial string
	if err := c.db.QueryRow(ctx, `SELECT state, coalesce(serial, '') FROM enrolments WHERE id = $1`, id).Scan(&state, &serial); err != nil {
		c.t.Fatal(err)
	}
	if state != "issued" {
		c.t.Errorf("%s: enrolment %d cut off by the kill is %s after a new activation link", addr, id, state)
	}
	return serial
}

// waitOutboxSent waits until every message in the outbox has been sent.
func (c *cluster) waitOutboxSent(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending, failed int
		if err := c.db.QueryRow(context.Background(),
			`SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed') FROM outbox`).Scan(&pending, &failed); err != nil {
			c.t.Fatal(err)
		}
		if failed > 0 {
			c.t.Errorf("%d messages failed", failed)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d messages still pending after %s", pending, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkCertificates checks in the database that every approved enrolment
// is issued with exactly one certificate, the one it names and the one its
// user got (serials, by mailbox), and that no other subscriber certificate
// exists.
func (c *cluster) checkCertificates(serials map[string]string) {
	c.t.Helper()
	ctx := context.Background()
	rows, err := c.db.Query(ctx, `
		SELECT e.id, e.mailbox, e.state, coalesce(e.serial, ''),
		       count(x.serial), coalesce(min(x.serial), '')
		FROM enrolments e
		LEFT JOIN certificates x ON x.once_key = 'enrolment:' || e.id AND x.state <> 'refused'
		WHERE e.state NOT IN ('invited', 'submitted')
		GROUP BY e.id, e.mailbox, e.state, e.serial`)
	if err != nil {
		c.t.Fatal(err)
	}
	enrolments, bad := 0, 0
	for rows.Next() {
		var id int64
		var mailbox, state, serial, certSerial string
		var certs int
		if err := rows.Scan(&id, &mailbox, &state, &serial, &certs, &certSerial); err != nil {
			c.t.Fatal(err)
		}
		enrolments++
		switch {
		case state != "issued" && state != "revoked":
			c.t.Errorf("enrolment %d (%s) ended %s", id, mailbox, state)
		case certs != 1 || certSerial != serial:
			c.t.Errorf("enrolment %d (%s) names %s and has %d certificates (%s)", id, mailbox, serial, certs, certSerial)
		case serials[mailbox] != serial:
			c.t.Errorf("enrolment %d (%s) names %s; its user got %s", id, mailbox, serial, serials[mailbox])
		default:
			continue
		}
		if bad++; bad == 10 {
			c.t.Fatal("too many bad enrolments")
		}
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	var total, distinct, issued int
	if err := c.db.QueryRow(ctx, `SELECT count(*), count(DISTINCT serial), count(*) FILTER (WHERE state = 'issued')
		FROM certificates WHERE state <> 'refused' AND profile <> $1`, ca.ResponderProfile).Scan(&total, &distinct, &issued); err != nil {
		c.t.Fatal(err)
	}
	users := map[string]bool{}
	for _, s := range serials {
		users[s] = true
	}
	c.t.Logf("database: %d approved enrolments, %d certificates (%d issued, %d distinct serials); users received %d certificates with %d distinct serials",
		enrolments, total, issued, distinct, len(serials), len(users))
	if total != enrolments || issued != enrolments || distinct != total || len(users) != len(serials) {
		c.t.Errorf("certificates do not match the approved enrolments one to one")
	}
}

// issuer returns the issuing CA's certificate.
func (c *cluster) issuer() *x509.Certificate {
	c.t.Helper()
	if c.issuing == nil {
		_, chain := roots(c.t, c.nodes[0])
		c.issuing = chain[0]
	}
	return c.issuing
}

// crlPath is the path of the issuing CA's CRL.
func (c *cluster) crlPath() string {
	return "/crl/" + hex.EncodeToString(c.issuer().SubjectKeyId[:8]) + ".crl"
}

// crl fetches the CRL from node n, checks its signature, and waits until
// until(number) holds when until is not nil.
func (c *cluster) crl(n int, until func(int64) bool) *x509.RevocationList {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body, err := c.do(n, "GET", c.crlPath(), nil)
		if err != nil || code != 200 {
			c.t.Fatalf("CRL from node %d: %d %v", n+1, code, err)
		}
		crl, err := x509.ParseRevocationList([]byte(body))
		if err != nil || crl.CheckSignatureFrom(c.issuer()) != nil {
			c.t.Fatalf("CRL from node %d: %v", n+1, err)
		}
		if until == nil || until(crl.Number.Int64()) {
			return crl
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d still serves CRL %d", n+1, crl.Number)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// makeCRL makes a new CRL with 'mailca crl' and returns its number.
func (c *cluster) makeCRL() int64 {
	c.t.Helper()
	out := filepath.Join(c.t.TempDir(), "crl.der")
	c.nodes[0].mailca("crl", "--dir", c.nodes[0].dir, "--out", out)
	der, err := os.ReadFile(out)
	if err != nil {
		c.t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		c.t.Fatal(err)
	}
	return crl.Number.Int64()
}

// Kinds of email, told apart by subject.
const (
	kindInvitation  = "invitation"
	kindApproved    = "approved"
	kindIssued      = "issued"
	kindApplication = "application"
	kindOther       = "other"
)

func mailKind(subject string) string {
	switch {
	case strings.HasPrefix(subject, "Approval needed"):
		return kindApplication
	case strings.Contains(subject, "invit"):
		return kindInvitation
	case strings.Contains(subject, "was approved"):
		return kindApproved
	case strings.Contains(subject, "has been issued"):
		return kindIssued
	}
	return kindOther
}

var approveIDRE = regexp.MustCompile(`mailca approve (\d+)`)

// mailTally counts what the SMTP server accepts, by Message-ID and by
// kind and recipient, and hands the links in it to the users and the IDs
// of applications to the approvers. It keeps no message.
type mailTally struct {
	applications chan int64 // IDs from the approvers' notices

	mu    sync.Mutex
	byID  map[string]int                        // deliveries by Message-ID
	ids   map[string]map[string]map[string]bool // kind -> recipient -> Message-IDs
	links map[string]chan string                // kind+" "+recipient -> each new link
	seen  map[string]bool                       // links handed out
	errs  []error
}

func newMailTally() *mailTally {
	return &mailTally{
		applications: make(chan int64, mnInvitations),
		byID:         map[string]int{},
		ids:          map[string]map[string]map[string]bool{},
		links:        map[string]chan string{},
		seen:         map[string]bool{},
	}
}

// observe is the SMTP server's observer.
func (m *mailTally) observe(r smtpsink.Received) {
	e, err := parseMail(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.errs = append(m.errs, err)
		return
	}
	m.byID[e.messageID]++
	if m.byID[e.messageID] > 1 {
		return
	}
	kind, to := mailKind(e.subject), strings.ToLower(e.to)
	if m.ids[kind] == nil {
		m.ids[kind] = map[string]map[string]bool{}
	}
	if m.ids[kind][to] == nil {
		m.ids[kind][to] = map[string]bool{}
	}
	m.ids[kind][to][e.messageID] = true
	switch kind {
	case kindApplication:
		if id := approveIDRE.FindStringSubmatch(e.text); id != nil {
			n, _ := strconv.ParseInt(id[1], 10, 64)
			m.applications <- n
		} else {
			m.errs = append(m.errs, fmt.Errorf("no application ID in %q", e.subject))
		}
	case kindInvitation, kindApproved:
		link := linkRE.FindString(e.text)
		if link == "" {
			m.errs = append(m.errs, fmt.Errorf("no link in %q to %s", e.subject, to))
			return
		}
		if m.seen[link] {
			return
		}
		m.seen[link] = true
		select {
		case m.linksLocked(kind, to) <- link:
		default:
			m.errs = append(m.errs, fmt.Errorf("too many %s links for %s", kind, to))
		}
	}
}

func (m *mailTally) linksLocked(kind, to string) chan string {
	k := kind + " " + to
	ch := m.links[k]
	if ch == nil {
		ch = make(chan string, 4)
		m.links[k] = ch
	}
	return ch
}

// link waits for the next new link of kind sent to addr.
func (m *mailTally) link(kind, addr string, timeout time.Duration) (string, error) {
	m.mu.Lock()
	ch := m.linksLocked(kind, strings.ToLower(addr))
	m.mu.Unlock()
	select {
	case l := <-ch:
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no %s email reached %s in %s", kind, addr, timeout)
	}
}

// count returns how many distinct messages of kind addr received.
func (m *mailTally) count(kind, addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ids[kind][strings.ToLower(addr)])
}

// distinct returns how many recipients received a message of kind.
func (m *mailTally) distinct(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ids[kind])
}

// kinds returns the number of distinct messages of each kind.
func (m *mailTally) kinds() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for k, byTo := range m.ids {
		for _, ids := range byTo {
			out[k] += len(ids)
		}
	}
	return out
}

// deliveries returns the number of messages accepted and how many of them
// repeated a Message-ID accepted before.
func (m *mailTally) deliveries() (messages, repeated int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.byID {
		messages += n
		repeated += n - 1
	}
	return messages, repeated
}

// check fails t for messages the tally could not read.
func (m *mailTally) check(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, err := range m.errs {
		t.Error(err)
	}
}
