// Package storetest is the conformance suite that every store.Store must
// pass: the queries mailca runs, with the outcomes its callers rely on.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
)

// Clocked is a store whose record times (audit events, enqueued mail,
// certificates) come from a clock the suite sets. Both stores are.
type Clocked interface {
	SetClock(now func() time.Time)
}

// CertificateCounter is a store that counts its certificate rows by
// state, as the tests of other packages ask. Both stores are.
type CertificateCounter interface {
	CountCertificates(ctx context.Context) (map[string]int, error)
}

func countCertificates(t *testing.T, s store.Store) (map[string]int, error) {
	t.Helper()
	c, ok := s.(CertificateCounter)
	if !ok {
		t.Fatalf("%T has no CountCertificates", s)
	}
	return c.CountCertificates(context.Background())
}

// Run runs the suite. open must return a new, empty, migrated store for
// each call; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Policies", testPolicies},
		{"InsertEnrolment", testInsertEnrolment},
		{"InsertEnrolments", testInsertEnrolments},
		{"Renewals", testRenewals},
		{"Transition", testTransition},
		{"TransitionRace", testTransitionRace},
		{"TxReads", testTxReads},
		{"TransitionDuplicate", testTransitionDuplicate},
		{"EnrolmentsPaging", testEnrolmentsPaging},
		{"Links", testLinks},
		{"ApproversBatchesReferrals", testApproversBatchesReferrals},
		{"StalledBatches", testStalledBatches},
		{"StalledBatchRace", testStalledBatchRace},
		{"Certificates", testCertificates},
		{"SerialRace", testSerialRace},
		{"AbandonReservation", testAbandonReservation},
		{"Outbox", testOutbox},
		{"OutboxClaimRace", testOutboxClaimRace},
		{"OutboxPaging", testOutboxPaging},
		{"Jobs", testJobs},
		{"JobClaimRace", testJobClaimRace},
		{"CRLNumbers", testCRLNumbers},
		{"CRLStorage", testCRLStorage},
		{"Revocation", testRevocation},
		{"RevocationFeed", testRevocationFeed},
		{"RevocationLinks", testRevocationLinks},
		{"Lifecycle", testLifecycle},
		{"Reminders", testReminders},
		{"AuditChain", testAuditChain},
		{"AuditFilter", testAuditFilter},
		{"AuditConcurrentAppends", testAuditConcurrent},
		{"Counts", testCounts},
		{"PingVersion", testPingVersion},
		{"Accounts", testAccounts},
		{"APIKeys", testAPIKeys},
		{"Webhooks", testWebhooks},
		{"WebhookClaimRace", testWebhookClaimRace},
		{"APIQueries", testAPIQueries},
		{"ConsoleLists", testConsoleLists},
		{"ConsoleNames", testConsoleNames},
		{"ConsoleBatches", testConsoleBatches},
		{"ConsoleWrites", testConsoleWrites},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

// base is a whole second, as every stored time is (the audit log's are
// nanoseconds), far enough from now that the clock never matters.
var base = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func setClock(t *testing.T, s store.Store, now func() time.Time) {
	t.Helper()
	c, ok := s.(Clocked)
	if !ok {
		t.Fatalf("%T has no SetClock", s)
	}
	c.SetClock(now)
}

func inTx(t *testing.T, s store.Store, fn func(enrol.Tx) error) {
	t.Helper()
	if err := s.InTx(context.Background(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

func savePolicy(t *testing.T, s store.Store, name string) int {
	t.Helper()
	v, err := s.SavePolicy(context.Background(), name, `{"name":"`+name+`"}`, "test")
	if err != nil {
		t.Fatalf("SavePolicy(%s): %v", name, err)
	}
	return v
}

// newEnrolment returns an invitation for mailbox under policy (version 1).
func newEnrolment(policy, mailbox string) *enrol.Enrolment {
	return &enrol.Enrolment{Policy: policy, PolicyVersion: 1, State: enrol.Invited, Channel: enrol.ViaInvitation,
		Mailbox: mailbox, MailboxKey: mailbox, GivenName: "Given", Surname: "Surname", Fields: map[string]string{"dept": "IT"},
		InvitedBy: "cli", CreatedAt: base, UpdatedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
}

func insert(t *testing.T, s store.Store, es ...*enrol.Enrolment) {
	t.Helper()
	inTx(t, s, func(tx enrol.Tx) error {
		for _, e := range es {
			if err := tx.InsertEnrolment(e); err != nil {
				return fmt.Errorf("InsertEnrolment(%s): %w", e.Mailbox, err)
			}
		}
		return nil
	})
}

func mustEnrolment(t *testing.T, s store.Store, id int64) *enrol.Enrolment {
	t.Helper()
	e, err := s.Enrolment(context.Background(), id)
	if err != nil {
		t.Fatalf("Enrolment(%d): %v", id, err)
	}
	return e
}

// transition moves e (as read) to state to, returning Transition's error.
func transition(s store.Store, e *enrol.Enrolment, to enrol.State) error {
	next := *e
	next.State, next.UpdatedAt = to, e.UpdatedAt.Add(time.Minute)
	switch to {
	case enrol.Submitted:
		next.SubmittedAt, next.TermsVersion = next.UpdatedAt, "terms-1"
	case enrol.Approved, enrol.Rejected:
		next.DecidedAt = next.UpdatedAt
	}
	return s.InTx(context.Background(), func(tx enrol.Tx) error {
		return tx.Transition(e.ID, e.State, e.Rev, &next)
	})
}

func ids(es []*enrol.Enrolment) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func testPolicies(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.Policy(ctx, "default"); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("Policy(missing) = %v, want ErrNotFound", err)
	}
	for want := 1; want <= 3; want++ {
		v, err := s.SavePolicy(ctx, "default", fmt.Sprint(`{"v":`, want, `}`), "cli")
		if err != nil || v != want {
			t.Fatalf("SavePolicy #%d = %d, %v; want %d", want, v, err, want)
		}
	}
	savePolicy(t, s, "Zeta")
	savePolicy(t, s, "alpha")
	body, v, err := s.Policy(ctx, "default")
	if err != nil || v != 3 || body != `{"v":3}` {
		t.Errorf("Policy(default) = %q, %d, %v; want version 3", body, v, err)
	}
	if body, err := s.PolicyAt(ctx, "default", 2); err != nil || body != `{"v":2}` {
		t.Errorf("PolicyAt(default, 2) = %q, %v", body, err)
	}
	if _, err := s.PolicyAt(ctx, "default", 9); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("PolicyAt(default, 9) = %v, want ErrNotFound", err)
	}
	// Names sort bytewise, upper case before lower, as SQLite sorts.
	if names, err := s.PolicyNames(ctx); err != nil || !slices.Equal(names, []string{"Zeta", "alpha", "default"}) {
		t.Errorf("PolicyNames = %v, %v", names, err)
	}

	// Concurrent saves of one policy get distinct versions.
	var wg sync.WaitGroup
	vs := make([]int, 6)
	errs := make([]error, len(vs))
	for i := range vs {
		wg.Go(func() { vs[i], errs[i] = s.SavePolicy(ctx, "race", "{}", "cli") })
	}
	wg.Wait()
	slices.Sort(vs)
	if err := errors.Join(errs...); err != nil || !slices.Equal(vs, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("concurrent SavePolicy = %v, %v; want versions 1 to 6", vs, err)
	}
}

func testInsertEnrolment(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	savePolicy(t, s, "q")
	a := newEnrolment("p", "a@example.com")
	insert(t, s, a)
	if a.ID == 0 {
		t.Fatal("InsertEnrolment left ID 0")
	}
	got := mustEnrolment(t, s, a.ID)
	want := *a
	want.Rev = 0
	if got.Policy != want.Policy || got.PolicyVersion != 1 || got.State != enrol.Invited || got.Channel != enrol.ViaInvitation ||
		got.Mailbox != want.Mailbox || got.MailboxKey != want.MailboxKey || got.GivenName != "Given" || got.Surname != "Surname" ||
		got.Fields["dept"] != "IT" || got.InvitedBy != "cli" || !got.CreatedAt.Equal(base) || !got.UpdatedAt.Equal(base) ||
		!got.ExpiresAt.Equal(base.Add(24*time.Hour)) || !got.SubmittedAt.IsZero() || got.Serial != "" || got.BatchID != 0 || got.RenewalOf != "" {
		t.Errorf("Enrolment(%d) = %+v, want %+v", a.ID, got, want)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
	}
	if _, err := s.Enrolment(ctx, a.ID+1000); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("Enrolment(missing) = %v, want ErrNotFound", err)
	}

	// A second live enrolment for the same policy and mailbox is refused,
	// and the transaction stays usable: the caller may carry on.
	err := s.InTx(ctx, func(tx enrol.Tx) error {
		if err := tx.InsertEnrolment(newEnrolment("p", "a@example.com")); !errors.Is(err, enrol.ErrDuplicate) {
			t.Errorf("second InsertEnrolment = %v, want ErrDuplicate", err)
		}
		return tx.InsertEnrolment(newEnrolment("q", "a@example.com")) // another policy: fine
	})
	if err != nil {
		t.Fatalf("InTx after ErrDuplicate: %v", err)
	}
	err = s.InTx(ctx, func(tx enrol.Tx) error {
		live, err := tx.LiveEnrolment("p", "a@example.com")
		if err != nil || live.ID != a.ID {
			t.Errorf("LiveEnrolment(p, a) = %+v, %v; want %d", live, err, a.ID)
		}
		if _, err := tx.LiveEnrolment("p", "b@example.com"); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("LiveEnrolment(p, b) = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Once the first is no longer live, the mailbox may be invited again.
	if err := transition(s, got, enrol.Cancelled); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	insert(t, s, newEnrolment("p", "a@example.com"))
}

func testInsertEnrolments(t *testing.T, s store.Store) {
	savePolicy(t, s, "p")
	insert(t, s, newEnrolment("p", "b@example.com"), newEnrolment("p", "d@example.com"))
	var es []*enrol.Enrolment
	for _, m := range []string{"a", "b", "c", "d", "e"} {
		es = append(es, newEnrolment("p", m+"@example.com"))
	}
	var stored []bool
	inTx(t, s, func(tx enrol.Tx) error {
		var err error
		stored, err = tx.InsertEnrolments(es)
		return err
	})
	if want := []bool{true, false, true, false, true}; !slices.Equal(stored, want) {
		t.Errorf("InsertEnrolments stored %v, want %v", stored, want)
	}
	for i, e := range es {
		if stored[i] != (e.ID != 0) {
			t.Errorf("enrolment %s: stored %v, ID %d", e.Mailbox, stored[i], e.ID)
		}
		if stored[i] && mustEnrolment(t, s, e.ID).Mailbox != e.Mailbox {
			t.Errorf("enrolment %d is not %s", e.ID, e.Mailbox)
		}
	}
	// More rows than one statement takes.
	var many []*enrol.Enrolment
	for i := range 2500 {
		many = append(many, newEnrolment("p", fmt.Sprintf("bulk%04d@example.com", i)))
	}
	many = append(many, newEnrolment("p", "a@example.com"))
	inTx(t, s, func(tx enrol.Tx) error {
		var err error
		stored, err = tx.InsertEnrolments(many)
		return err
	})
	n := 0
	for _, ok := range stored {
		if ok {
			n++
		}
	}
	if n != 2500 || stored[2500] {
		t.Errorf("bulk InsertEnrolments stored %d (last %v), want 2500 and not the duplicate", n, stored[2500])
	}
	counts, err := s.CountEnrolments(context.Background())
	if err != nil || counts[enrol.Invited] != 2505 {
		t.Errorf("CountEnrolments = %v, %v; want 2505 invited", counts, err)
	}
}

// issue stores an issued certificate with serial for mailbox, valid until
// notAfter, under issuer.
func issue(t *testing.T, s store.Store, serial, issuer, mailbox string, notAfter time.Time) {
	t.Helper()
	reserve(t, s, serial, issuer, mailbox, notAfter, "")
	if err := s.StoreCertificate(context.Background(), serial, []byte("der-"+serial)); err != nil {
		t.Fatalf("StoreCertificate(%s): %v", serial, err)
	}
}

func spki(serial string) []byte {
	h := sha256.Sum256([]byte(serial))
	return h[:]
}

func reserve(t *testing.T, s store.Store, serial, issuer, mailbox string, notAfter time.Time, once string) {
	t.Helper()
	err := s.ReserveSerial(context.Background(), ca.Reservation{Serial: serial, IssuerID: issuer, Profile: ca.DefaultProfile, Mailbox: mailbox,
		SPKIHash: spki(serial), NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter, LintDER: []byte{1}, Once: once})
	if err != nil {
		t.Fatalf("ReserveSerial(%s): %v", serial, err)
	}
}

func testRenewals(t *testing.T, s store.Store) {
	savePolicy(t, s, "p")
	issue(t, s, "c1", "iss", "a@example.com", base.Add(24*time.Hour))
	a := newEnrolment("p", "a@example.com")
	insert(t, s, a)
	// A renewal of c1 is outside the one-live-enrolment rule...
	r := newEnrolment("p", "a@example.com")
	r.Channel, r.RenewalOf = enrol.ViaRenewal, "c1"
	insert(t, s, r)
	if got := mustEnrolment(t, s, r.ID); got.RenewalOf != "c1" || got.Channel != enrol.ViaRenewal {
		t.Errorf("renewal = %+v", got)
	}
	// ...but c1 has at most one live renewal.
	r2 := newEnrolment("p", "a@example.com")
	r2.RenewalOf = "c1"
	inTx(t, s, func(tx enrol.Tx) error {
		if err := tx.InsertEnrolment(r2); !errors.Is(err, enrol.ErrDuplicate) {
			t.Errorf("second renewal of c1 = %v, want ErrDuplicate", err)
		}
		ltx, ok := tx.(enrol.LifecycleTx)
		if !ok {
			t.Fatalf("%T is no enrol.LifecycleTx", tx)
		}
		got, err := ltx.Renewal("c1")
		if err != nil || got.ID != r.ID {
			t.Errorf("Renewal(c1) = %+v, %v; want %d", got, err, r.ID)
		}
		if _, err := ltx.Renewal("c2"); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("Renewal(c2) = %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testTransition(t *testing.T, s store.Store) {
	savePolicy(t, s, "p")
	e := newEnrolment("p", "a@example.com")
	insert(t, s, e)
	e = mustEnrolment(t, s, e.ID)
	if err := transition(s, e, enrol.Submitted); err != nil {
		t.Fatalf("invited -> submitted: %v", err)
	}
	got := mustEnrolment(t, s, e.ID)
	if got.State != enrol.Submitted || got.Rev != 1 || got.TermsVersion != "terms-1" || !got.SubmittedAt.Equal(base.Add(time.Minute)) {
		t.Errorf("after submit: %+v", got)
	}
	// The old state and revision no longer match.
	if err := transition(s, e, enrol.Cancelled); !errors.Is(err, enrol.ErrStale) {
		t.Errorf("transition from a stale revision = %v, want ErrStale", err)
	}
	wrong := *got
	wrong.State = enrol.Approved
	if err := transition(s, &wrong, enrol.Issued); !errors.Is(err, enrol.ErrStale) {
		t.Errorf("transition from the wrong state = %v, want ErrStale", err)
	}
	if err := transition(s, got, enrol.Approved); err != nil {
		t.Fatalf("submitted -> approved: %v", err)
	}
	// Issuing sets the serial, which must be a stored certificate.
	issue(t, s, "c1", "iss", "a@example.com", base.Add(365*24*time.Hour))
	got = mustEnrolment(t, s, e.ID)
	next := *got
	next.State, next.Serial, next.IssuedAt = enrol.Issued, "c1", base.Add(time.Hour)
	inTx(t, s, func(tx enrol.Tx) error { return tx.Transition(got.ID, got.State, got.Rev, &next) })
	got = mustEnrolment(t, s, e.ID)
	if got.State != enrol.Issued || got.Serial != "c1" || got.Rev != 3 || !got.IssuedAt.Equal(base.Add(time.Hour)) || !got.DecidedAt.Equal(base.Add(2*time.Minute)) {
		t.Errorf("after issue: %+v", got)
	}
	inTx(t, s, func(tx enrol.Tx) error {
		byserial, err := tx.EnrolmentBySerial("c1")
		if err != nil || byserial.ID != e.ID {
			t.Errorf("EnrolmentBySerial(c1) = %+v, %v", byserial, err)
		}
		if _, err := tx.EnrolmentBySerial("c2"); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("EnrolmentBySerial(c2) = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// testTransitionRace runs two transactions that move the same enrolment
// from the same state and revision at once: one wins, the other gets
// ErrStale.
func testTransitionRace(t *testing.T, s store.Store) {
	savePolicy(t, s, "p")
	for round := range 5 {
		e := newEnrolment("p", fmt.Sprint("race", round, "@example.com"))
		insert(t, s, e)
		e = mustEnrolment(t, s, e.ID)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, to := range []enrol.State{enrol.Submitted, enrol.Cancelled} {
			wg.Go(func() { errs[i] = transition(s, e, to) })
		}
		wg.Wait()
		won, stale := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, enrol.ErrStale):
				stale++
			default:
				t.Errorf("racing transition: %v", err)
			}
		}
		if won != 1 || stale != 1 {
			t.Errorf("round %d: %d won, %d stale (%v); want one of each", round, won, stale, errs)
		}
		if got := mustEnrolment(t, s, e.ID); got.Rev != 1 {
			t.Errorf("round %d: rev %d after the race, want 1", round, got.Rev)
		}
	}
}

// testTransitionDuplicate moves an enrolment back into a live state while
// another is live for the same mailbox: ErrDuplicate, and the transaction
// carries on.
func testTransitionDuplicate(t *testing.T, s store.Store) {
	savePolicy(t, s, "p")
	a := newEnrolment("p", "a@example.com")
	insert(t, s, a)
	a = mustEnrolment(t, s, a.ID)
	if err := transition(s, a, enrol.Expired); err != nil {
		t.Fatal(err)
	}
	b := newEnrolment("p", "a@example.com")
	insert(t, s, b)
	a = mustEnrolment(t, s, a.ID)
	err := s.InTx(context.Background(), func(tx enrol.Tx) error {
		next := *a
		next.State = enrol.Invited
		if err := tx.Transition(a.ID, a.State, a.Rev, &next); !errors.Is(err, enrol.ErrDuplicate) {
			t.Errorf("Transition into a second live enrolment = %v, want ErrDuplicate", err)
		}
		return tx.Audit(enrol.Event{Actor: "cli", Action: "test", Object: "enrolment:1"})
	})
	if err != nil {
		t.Errorf("InTx after ErrDuplicate: %v", err)
	}
}

func testEnrolmentsPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	savePolicy(t, s, "q")
	var b enrol.Batch
	inTx(t, s, func(tx enrol.Tx) error {
		b = enrol.Batch{Policy: "p", Filename: "people.csv", Actor: "cli", State: "importing", CreatedAt: base}
		return tx.InsertBatch(&b)
	})
	var all []*enrol.Enrolment
	for i := range 30 {
		policy := "p"
		if i%3 == 0 {
			policy = "q"
		}
		e := newEnrolment(policy, fmt.Sprintf("user%02d@example.com", i))
		if i%2 == 0 {
			e.BatchID = b.ID
		}
		if i >= 25 {
			e.Mailbox, e.MailboxKey = fmt.Sprintf("zed%02d@example.org", i), fmt.Sprintf("zed%02d@example.org", i)
		}
		all = append(all, e)
	}
	insert(t, s, all...)
	for _, e := range all[:4] {
		if err := transition(s, mustEnrolment(t, s, e.ID), enrol.Submitted); err != nil {
			t.Fatal(err)
		}
	}
	// Every page follows the last through Before, newest first.
	var got []int64
	f := enrol.Filter{Limit: 7}
	for {
		page, err := s.Enrolments(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > f.Limit {
			t.Fatalf("page of %d, limit %d", len(page), f.Limit)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, ids(page)...)
		f.Before = page[len(page)-1].ID
	}
	want := ids(all)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("paging gave %v, want %v", got, want)
	}
	filter := func(keep func(i int, e *enrol.Enrolment) bool) []int64 {
		var out []int64
		for i := len(all) - 1; i >= 0; i-- {
			if keep(i, all[i]) {
				out = append(out, all[i].ID)
			}
		}
		return out
	}
	tests := []struct {
		name string
		f    enrol.Filter
		want []int64
	}{
		{"state", enrol.Filter{State: enrol.Submitted, Limit: 100}, filter(func(i int, _ *enrol.Enrolment) bool { return i < 4 })},
		{"policy", enrol.Filter{Policy: "q", Limit: 100}, filter(func(_ int, e *enrol.Enrolment) bool { return e.Policy == "q" })},
		{"batch", enrol.Filter{BatchID: b.ID, Limit: 100}, filter(func(i int, _ *enrol.Enrolment) bool { return i%2 == 0 })},
		{"mailbox prefix", enrol.Filter{Mailbox: "zed", Limit: 100}, filter(func(i int, _ *enrol.Enrolment) bool { return i >= 25 })},
		{"mailbox prefix is case-sensitive", enrol.Filter{Mailbox: "ZED", Limit: 100}, nil},
		{"combined", enrol.Filter{Policy: "q", BatchID: b.ID, State: enrol.Invited, Limit: 100},
			filter(func(i int, e *enrol.Enrolment) bool { return e.Policy == "q" && i%2 == 0 && i >= 4 })},
		{"before and limit", enrol.Filter{Before: all[10].ID, Limit: 3}, []int64{all[9].ID, all[8].ID, all[7].ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := s.Enrolments(ctx, tt.f)
			if got := ids(es); err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Enrolments(%+v) = %v, %v; want %v", tt.f, got, err, tt.want)
			}
		})
	}
}

func testLinks(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	e := newEnrolment("p", "a@example.com")
	insert(t, s, e)
	h := func(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }
	exp := base.Add(time.Hour)
	inTx(t, s, func(tx enrol.Tx) error {
		if err := tx.InsertLink(enrol.Link{Hash: h("inv"), Purpose: enrol.PurposeInvitation, EnrolmentID: e.ID, ExpiresAt: exp}); err != nil {
			return err
		}
		return tx.InsertLinks([]enrol.Link{
			{Hash: h("inv2"), Purpose: enrol.PurposeInvitation, EnrolmentID: e.ID, ExpiresAt: exp},
			{Hash: h("act"), Purpose: enrol.PurposeActivation, EnrolmentID: e.ID, ExpiresAt: exp},
		})
	})
	l, err := s.Link(ctx, h("inv"))
	if err != nil || l.Purpose != enrol.PurposeInvitation || l.EnrolmentID != e.ID || !l.ExpiresAt.Equal(exp) || !l.UsedAt.IsZero() || !bytes.Equal(l.Hash, h("inv")) {
		t.Errorf("Link(inv) = %+v, %v", l, err)
	}
	if _, err := s.Link(ctx, h("nonesuch")); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("Link(nonesuch) = %v, want ErrNotFound", err)
	}
	use := func(name string, p enrol.Purpose, now time.Time) error {
		return s.InTx(ctx, func(tx enrol.Tx) error {
			l, err := tx.UseLink(h(name), p, now)
			if err == nil && (l.EnrolmentID != e.ID || !l.UsedAt.Equal(now) || l.Purpose != p) {
				t.Errorf("UseLink(%s) = %+v", name, l)
			}
			return err
		})
	}
	if err := use("inv", enrol.PurposeActivation, base); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("UseLink for another purpose = %v, want ErrNotFound", err)
	}
	if err := use("inv", enrol.PurposeInvitation, exp); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("UseLink at its expiry = %v, want ErrNotFound", err)
	}
	if err := use("inv", enrol.PurposeInvitation, base); err != nil {
		t.Errorf("UseLink = %v", err)
	}
	if err := use("inv", enrol.PurposeInvitation, base); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("UseLink twice = %v, want ErrNotFound", err)
	}
	if l, _ := s.Link(ctx, h("inv")); !l.UsedAt.Equal(base) {
		t.Errorf("used link's UsedAt = %v, want %v", l.UsedAt, base)
	}
	// Releasing works only for an approved enrolment's link.
	inTx(t, s, func(tx enrol.Tx) error { return tx.ReleaseLink(h("inv")) })
	if err := use("inv", enrol.PurposeInvitation, base); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("UseLink after releasing an invited enrolment's link = %v, want ErrNotFound", err)
	}
	cur := mustEnrolment(t, s, e.ID)
	if err := transition(s, cur, enrol.Submitted); err != nil {
		t.Fatal(err)
	}
	if err := transition(s, mustEnrolment(t, s, e.ID), enrol.Approved); err != nil {
		t.Fatal(err)
	}
	if err := use("act", enrol.PurposeActivation, base); err != nil {
		t.Fatal(err)
	}
	inTx(t, s, func(tx enrol.Tx) error { return tx.ReleaseLink(h("act")) })
	if err := use("act", enrol.PurposeActivation, base); err != nil {
		t.Errorf("UseLink after ReleaseLink = %v", err)
	}
	// Retiring marks the unused links of one purpose used.
	inTx(t, s, func(tx enrol.Tx) error { return tx.RetireLinks(e.ID, enrol.PurposeInvitation, base.Add(time.Second)) })
	if l, _ := s.Link(ctx, h("inv2")); !l.UsedAt.Equal(base.Add(time.Second)) {
		t.Errorf("retired link's UsedAt = %v", l.UsedAt)
	}
	if l, _ := s.Link(ctx, h("inv")); !l.UsedAt.Equal(base) {
		t.Errorf("RetireLinks changed a used link's UsedAt to %v", l.UsedAt)
	}
	// Validations are recorded.
	inTx(t, s, func(tx enrol.Tx) error {
		return tx.RecordValidation(enrol.Validation{EnrolmentID: e.ID, Mailbox: e.Mailbox, Method: "activation-link", BRVersion: "1.0.0", At: base})
	})
}

func testApproversBatchesReferrals(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	e := newEnrolment("p", "a@example.com")
	insert(t, s, e)
	if err := transition(s, mustEnrolment(t, s, e.ID), enrol.Submitted); err != nil {
		t.Fatal(err)
	}
	for i, a := range []string{"ann", "bob", "ann"} {
		inTx(t, s, func(tx enrol.Tx) error {
			n, err := tx.AddApprover(e.ID, a, base.Add(time.Duration(i)*time.Second))
			if want := min(i+1, 2); n != want {
				t.Errorf("AddApprover(%s) = %d, want %d", a, n, want)
			}
			return err
		})
	}
	if got := mustEnrolment(t, s, e.ID).Approvers; !slices.Equal(got, []string{"ann", "bob"}) {
		t.Errorf("Approvers = %v, want [ann bob]", got)
	}

	b := enrol.Batch{Policy: "p", Filename: "people.csv", Actor: "cli", State: "importing", CreatedAt: base}
	inTx(t, s, func(tx enrol.Tx) error { return tx.InsertBatch(&b) })
	b.State, b.Rows, b.Invited, b.Refused, b.DoneAt, b.UpdatedAt = "done", 3, 2, 1, base.Add(time.Minute), base.Add(time.Minute)
	inTx(t, s, func(tx enrol.Tx) error { return tx.UpdateBatch(&b) })
	got, err := s.Batch(ctx, b.ID)
	if err != nil || *got != b {
		t.Errorf("Batch(%d) = %+v, %v; want %+v", b.ID, got, err, b)
	}
	if _, err := s.Batch(ctx, b.ID+1); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("Batch(missing) = %v, want ErrNotFound", err)
	}

	// A referral ID is spent once; the transaction carries on after.
	inTx(t, s, func(tx enrol.Tx) error { return tx.UseReferral("jti-1", base) })
	inTx(t, s, func(tx enrol.Tx) error {
		if err := tx.UseReferral("jti-1", base); !errors.Is(err, enrol.ErrDuplicate) {
			t.Errorf("UseReferral twice = %v, want ErrDuplicate", err)
		}
		return tx.UseReferral("jti-2", base)
	})
}

func testCertificates(t *testing.T, s store.Store) {
	ctx := context.Background()
	na := base.Add(24 * time.Hour)
	r := ca.Reservation{Serial: "0a", IssuerID: "iss", Profile: ca.DefaultProfile, Mailbox: "a@example.com", SPKIHash: spki("k1"),
		NotBefore: base, NotAfter: na, LintDER: []byte{1}, Once: "enrolment:1"}
	if err := s.ReserveSerial(ctx, r); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*ca.Reservation)
		want error
	}{
		{"serial taken", func(r *ca.Reservation) { r.SPKIHash, r.Once = spki("k2"), "" }, ca.ErrSerialTaken},
		{"key in use", func(r *ca.Reservation) { r.Serial, r.Once = "0b", "" }, ca.ErrKeyInUse},
		{"once taken", func(r *ca.Reservation) { r.Serial, r.SPKIHash = "0b", spki("k2") }, ca.ErrOnceTaken},
	}
	for _, tt := range tests {
		r2 := r
		tt.mod(&r2)
		if err := s.ReserveSerial(ctx, r2); !errors.Is(err, tt.want) {
			t.Errorf("%s: ReserveSerial = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := s.CertificateFor(ctx, "enrolment:1"); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("CertificateFor(reserved) = %v, want ErrNotFound", err)
	}
	// A refused reservation frees its key and once key, not its serial.
	if err := s.RefuseSerial(ctx, "0a", "lint: e_something"); err != nil {
		t.Fatal(err)
	}
	if err := s.RefuseSerial(ctx, "0a", "again"); err == nil {
		t.Error("RefuseSerial of a refused serial succeeded")
	}
	if err := s.StoreCertificate(ctx, "0a", []byte{9}); err == nil {
		t.Error("StoreCertificate of a refused serial succeeded")
	}
	r3 := r
	r3.Serial = "0b"
	if err := s.ReserveSerial(ctx, r3); err != nil {
		t.Errorf("ReserveSerial with the refused reservation's key and once key = %v", err)
	}
	r4 := r
	r4.SPKIHash, r4.Once = spki("k3"), ""
	if err := s.ReserveSerial(ctx, r4); !errors.Is(err, ca.ErrSerialTaken) {
		t.Errorf("ReserveSerial of a refused serial = %v, want ErrSerialTaken", err)
	}
	// A blocked key is never certified; blocking twice is fine.
	for range 2 {
		if err := s.BlockKey(ctx, spki("bad"), "CA key"); err != nil {
			t.Fatal(err)
		}
	}
	r5 := r
	r5.Serial, r5.SPKIHash, r5.Once = "0c", spki("bad"), ""
	if err := s.ReserveSerial(ctx, r5); !errors.Is(err, ca.ErrKeyInUse) {
		t.Errorf("ReserveSerial with a blocked key = %v, want ErrKeyInUse", err)
	}
	if err := s.StoreCertificate(ctx, "0b", testCertDER(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreCertificate(ctx, "0b", testCertDER(t)); err == nil {
		t.Error("StoreCertificate twice succeeded")
	}
	c, err := s.CertificateFor(ctx, "enrolment:1")
	if err != nil || c.Subject.CommonName != "storetest" {
		t.Errorf("CertificateFor(enrolment:1) = %v, %v", c, err)
	}
	counts, err := countCertificates(t, s)
	if err != nil || counts["refused"] != 1 || counts["issued"] != 1 || counts["reserved"] != 0 {
		t.Errorf("CountCertificates = %v, %v; want 1 refused, 1 issued", counts, err)
	}
	st, err := s.CertificateStatus(ctx, "0b")
	if err != nil || !st.Issued || st.IssuerID != "iss" || !st.NotAfter.Equal(na) || st.Revoked() {
		t.Errorf("CertificateStatus(0b) = %+v, %v", st, err)
	}
}

// testSerialRace reserves one serial from several goroutines: exactly one
// gets it.
func testSerialRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.ReserveSerial(ctx, ca.Reservation{Serial: "77", IssuerID: "iss", Profile: ca.DefaultProfile, Mailbox: "a@example.com",
				SPKIHash: spki(strconv.Itoa(i)), NotBefore: base, NotAfter: base.Add(time.Hour), LintDER: []byte{1}})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ca.ErrSerialTaken):
			t.Errorf("racing ReserveSerial: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d reservations of one serial succeeded, want 1", won)
	}
}

func enqueue(t *testing.T, s store.Store, ms ...enrol.Mail) {
	t.Helper()
	inTx(t, s, func(tx enrol.Tx) error { return tx.EnqueueAll(ms) })
}

func mail(i int, to string) enrol.Mail {
	return enrol.Mail{Template: "invitation", TemplateSet: "default", To: to, Data: map[string]string{"Link": fmt.Sprint("https://x/", i)},
		MessageID: fmt.Sprintf("<%d@storetest>", i)}
}

func testOutbox(t *testing.T, s store.Store) {
	ctx := context.Background()
	setClock(t, s, func() time.Time { return base })
	savePolicy(t, s, "p")
	e := newEnrolment("p", "a@example.com")
	insert(t, s, e)
	m0 := mail(0, "a@example.com")
	m0.EnrolmentID = e.ID
	inTx(t, s, func(tx enrol.Tx) error { return tx.Enqueue(m0) })
	enqueue(t, s, mail(1, "b@example.com"), mail(2, "c@example.com"))

	// Nothing is due before it was enqueued.
	if got, err := s.ClaimDue(ctx, base.Add(-time.Second), 10, time.Minute); err != nil || len(got) != 0 {
		t.Errorf("ClaimDue before due = %d, %v", len(got), err)
	}
	got, err := s.ClaimDue(ctx, base, 2, time.Minute)
	if err != nil || len(got) != 2 {
		t.Fatalf("ClaimDue(2) = %d, %v", len(got), err)
	}
	m := got[0]
	if m.Template != "invitation" || m.TemplateSet != "default" || m.To != "a@example.com" || m.EnrolmentID != e.ID || m.Data["Link"] != "https://x/0" ||
		m.MessageID != "<0@storetest>" || m.State != "pending" || m.Attempts != 0 || !m.CreatedAt.Equal(base) || !m.NextAttempt.Equal(base) {
		t.Errorf("claimed %+v", m)
	}
	if got[1].To != "b@example.com" {
		t.Errorf("second claimed goes to %s, want b (oldest first)", got[1].To)
	}
	// Claimed messages stay leased; the third is still free.
	if more, _ := s.ClaimDue(ctx, base.Add(30*time.Second), 10, time.Minute); len(more) != 1 || more[0].To != "c@example.com" {
		t.Errorf("ClaimDue during the lease = %v, want only c", more)
	}
	// Backoff: a retried message is not due before its next attempt, and
	// no longer leased.
	if err := s.MarkRetry(ctx, got[1].ID, base.Add(10*time.Minute), "451 try later"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, got[0].ID, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(ctx, got[0].ID, base.Add(time.Second)); !errors.Is(err, store.ErrNoMessage) {
		t.Errorf("MarkSent twice = %v, want ErrNoMessage", err)
	}
	if err := s.MarkRetry(ctx, 999999, base, "x"); !errors.Is(err, store.ErrNoMessage) {
		t.Errorf("MarkRetry(missing) = %v, want ErrNoMessage", err)
	}
	if more, _ := s.ClaimDue(ctx, base.Add(2*time.Minute), 10, time.Minute); len(more) != 1 || more[0].To != "c@example.com" {
		t.Errorf("ClaimDue after the lease = %v, want only c (b backs off)", more)
	}
	// At b's next attempt, c's second lease has run out too.
	more, _ := s.ClaimDue(ctx, base.Add(10*time.Minute), 10, time.Minute)
	slices.SortFunc(more, func(a, b outbox.Message) int { return strings.Compare(a.To, b.To) })
	if len(more) != 2 || more[0].To != "b@example.com" || more[1].To != "c@example.com" {
		t.Fatalf("ClaimDue at b's next attempt = %+v, want b and c", more)
	}
	b := more[0]
	if b.Attempts != 1 || b.LastError != "451 try later" || !b.NextAttempt.Equal(base.Add(10*time.Minute)) {
		t.Errorf("retried message = %+v", b)
	}
	if err := s.MarkFailed(ctx, b.ID, "550 no such user"); err != nil {
		t.Fatal(err)
	}

	sent, err := s.Message(ctx, got[0].ID)
	if err != nil || sent.State != "sent" || sent.Data != nil || !sent.SentAt.Equal(base.Add(time.Second)) || sent.Attempts != 1 {
		t.Errorf("sent message = %+v, %v; want its data erased", sent, err)
	}
	failed, _ := s.Message(ctx, b.ID)
	if failed.State != "failed" || failed.Data != nil || failed.Attempts != 2 || failed.LastError != "550 no such user" {
		t.Errorf("failed message = %+v", failed)
	}
	if _, err := s.Message(ctx, 999999); !errors.Is(err, store.ErrNoMessage) {
		t.Errorf("Message(missing) = %v, want ErrNoMessage", err)
	}
	counts, err := s.Counts(ctx)
	if err != nil || counts["sent"] != 1 || counts["failed"] != 1 || counts["pending"] != 1 {
		t.Errorf("Counts = %v, %v", counts, err)
	}
}

// testOutboxClaimRace has several workers claim at once: each message goes
// to exactly one.
func testOutboxClaimRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	setClock(t, s, func() time.Time { return base })
	var ms []enrol.Mail
	for i := range 60 {
		ms = append(ms, mail(i, "x@example.com"))
	}
	enqueue(t, s, ms...)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]int{}
	)
	for range 6 {
		wg.Go(func() {
			for {
				got, err := s.ClaimDue(ctx, base, 7, time.Hour)
				if err != nil {
					t.Errorf("ClaimDue: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 60 {
		t.Errorf("%d messages claimed, want 60", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %d claimed %d times", id, n)
		}
	}
}

func testOutboxPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	var ms []enrol.Mail
	for i := range 25 {
		to := "a@example.com"
		if i%5 == 0 {
			to = "b@example.com"
		}
		ms = append(ms, mail(i, to))
	}
	enqueue(t, s, ms...)
	var all []int64
	f := outbox.Filter{Limit: 10}
	for {
		page, err := s.Messages(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			all = append(all, m.ID)
		}
		f.Before = page[len(page)-1].ID
	}
	if len(all) != 25 || !slices.IsSortedFunc(all, func(a, b int64) int { return int(b - a) }) {
		t.Errorf("paged IDs %v, want 25 newest first", all)
	}
	if got, _ := s.Messages(ctx, outbox.Filter{To: "b@example.com"}); len(got) != 5 {
		t.Errorf("Messages(To: b) = %d, want 5", len(got))
	}
	if got, _ := s.Messages(ctx, outbox.Filter{State: "sent"}); len(got) != 0 {
		t.Errorf("Messages(State: sent) = %d, want 0", len(got))
	}
	for _, limit := range []int{0, -1, 5000} {
		if got, _ := s.Messages(ctx, outbox.Filter{Limit: limit}); len(got) != 25 {
			t.Errorf("Messages(Limit: %d) = %d, want 25", limit, len(got))
		}
	}
}

func testJobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	claim := func(holder string, now time.Time) bool {
		t.Helper()
		ok, err := s.ClaimJob(ctx, "expire", holder, now, time.Minute)
		if err != nil {
			t.Fatalf("ClaimJob: %v", err)
		}
		return ok
	}
	if !claim("h1", base) {
		t.Fatal("a job never seen is not due")
	}
	if claim("h2", base.Add(30*time.Second)) {
		t.Error("claimed a job under another's lease")
	}
	// A lease that runs out lets another node take over; the first
	// holder's FinishJob then changes nothing.
	if !claim("h2", base.Add(2*time.Minute)) {
		t.Error("could not claim after the lease ran out")
	}
	if err := s.FinishJob(ctx, "expire", "h1", base.Add(2*time.Minute), base.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Jobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].Holder != "h2" || !jobs[0].LastRun.IsZero() {
		t.Fatalf("Jobs after a stale FinishJob = %+v, %v", jobs, err)
	}
	if err := s.FinishJob(ctx, "expire", "h2", base.Add(3*time.Minute), base.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	jobs, _ = s.Jobs(ctx)
	if j := jobs[0]; j.Name != "expire" || j.Holder != "" || !j.LeaseUntil.IsZero() || !j.LastRun.Equal(base.Add(3*time.Minute)) || !j.NextRun.Equal(base.Add(time.Hour)) {
		t.Errorf("job after FinishJob = %+v", j)
	}
	if claim("h3", base.Add(59*time.Minute)) {
		t.Error("claimed before the next run")
	}
	if !claim("h3", base.Add(time.Hour)) {
		t.Error("could not claim at the next run")
	}
	// A failed run keeps the last successful one.
	if err := s.FinishJob(ctx, "expire", "h3", base.Add(61*time.Minute), base.Add(62*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	jobs, _ = s.Jobs(ctx)
	if j := jobs[0]; !j.LastRun.Equal(base.Add(3*time.Minute)) || !j.NextRun.Equal(base.Add(62*time.Minute)) {
		t.Errorf("job after a failed run = %+v", j)
	}
	if _, err := s.ClaimJob(ctx, "digest", "h1", base, time.Minute); err != nil {
		t.Fatal(err)
	}
	jobs, _ = s.Jobs(ctx)
	if len(jobs) != 2 || jobs[0].Name != "digest" || jobs[1].Name != "expire" {
		t.Errorf("Jobs = %+v, want digest and expire by name", jobs)
	}
}

// testJobClaimRace has several nodes claim one job at once: one wins.
func testJobClaimRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := range 3 {
		name := fmt.Sprint("job", round)
		var wg sync.WaitGroup
		won := make([]bool, 6)
		for i := range won {
			wg.Go(func() {
				ok, err := s.ClaimJob(ctx, name, fmt.Sprint("holder", i), base, time.Minute)
				if err != nil {
					t.Errorf("ClaimJob: %v", err)
				}
				won[i] = ok
			})
		}
		wg.Wait()
		n := 0
		for _, ok := range won {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Errorf("round %d: %d claims of one job succeeded, want 1", round, n)
		}
	}
}

// testCRLNumbers takes CRL numbers from concurrent callers: every number is
// handed out once, with none skipped.
func testCRLNumbers(t *testing.T, s store.Store) {
	ctx := context.Background()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got []int64
	)
	for range 8 {
		wg.Go(func() {
			var mine []int64
			for range 5 {
				n, err := s.NextCRLNumber(ctx, "iss")
				if err != nil {
					t.Errorf("NextCRLNumber: %v", err)
					return
				}
				mine = append(mine, n)
			}
			if !slices.IsSorted(mine) {
				t.Errorf("one caller's numbers went down: %v", mine)
			}
			mu.Lock()
			got = append(got, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, n := range got {
		if n != int64(i+1) {
			t.Fatalf("CRL numbers %v, want 1 to 40 once each", got)
		}
	}
	if n, _ := s.NextCRLNumber(ctx, "other"); n != 1 {
		t.Errorf("NextCRLNumber(other) = %d, want 1: each issuer counts its own", n)
	}
}

func testCRLStorage(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.LatestCRL(ctx, "iss", true); !errors.Is(err, ca.ErrNoCRL) {
		t.Errorf("LatestCRL before any = %v, want ErrNoCRL", err)
	}
	save := func(n int64) {
		t.Helper()
		if err := s.SaveCRL(ctx, &ca.CRL{IssuerID: "iss", Number: n, ThisUpdate: base, NextUpdate: base.Add(time.Hour), RevocationSeq: n * 10, Entries: int(n), DER: []byte{byte(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	save(2)
	save(1) // an older CRL, stored late by a slower node: ignored
	c, err := s.LatestCRL(ctx, "iss", true)
	if err != nil || c.Number != 2 || !bytes.Equal(c.DER, []byte{2}) || c.RevocationSeq != 20 || c.Entries != 2 || !c.ThisUpdate.Equal(base) || !c.NextUpdate.Equal(base.Add(time.Hour)) {
		t.Errorf("LatestCRL = %+v, %v; want number 2", c, err)
	}
	if c, _ := s.LatestCRL(ctx, "iss", false); c.Number != 2 || c.DER != nil {
		t.Errorf("LatestCRL without DER = %+v", c)
	}
	save(3)
	if c, _ := s.LatestCRL(ctx, "iss", true); c.Number != 3 {
		t.Errorf("LatestCRL after a newer one = %d, want 3", c.Number)
	}
}

func revoke(s store.Store, serial string, reason ca.RevocationReason, at time.Time) (*enrol.Revocation, bool, error) {
	var r *enrol.Revocation
	var revoked bool
	err := s.InTx(context.Background(), func(tx enrol.Tx) error {
		var err error
		r, revoked, err = tx.RevokeCertificate(serial, reason, at)
		return err
	})
	return r, revoked, err
}

func testRevocation(t *testing.T, s store.Store) {
	ctx := context.Background()
	later := base.Add(24 * time.Hour)
	issue(t, s, "a1", "issuerA", "a1@example.com", later)
	reserve(t, s, "a2", "issuerA", "a2@example.com", later, "")
	at := base

	r, revoked, err := revoke(s, "a1", ca.ReasonKeyCompromise, at)
	if err != nil || !revoked || r.IssuerID != "issuerA" || r.Mailbox != "a1@example.com" || !r.NotAfter.Equal(later) || !bytes.Equal(r.SPKIHash, spki("a1")) ||
		r.Reason != ca.ReasonKeyCompromise || !r.RevokedAt.Equal(at) {
		t.Fatalf("RevokeCertificate(a1) = %+v, %v, %v", r, revoked, err)
	}
	r, revoked, err = revoke(s, "a1", ca.ReasonSuperseded, at.Add(time.Hour))
	if err != nil || revoked || r.Reason != ca.ReasonKeyCompromise || !r.RevokedAt.Equal(at) {
		t.Errorf("second RevokeCertificate(a1) = %+v, %v, %v; want the first revocation, unchanged", r, revoked, err)
	}
	for _, serial := range []string{"a2", "nonesuch"} {
		if _, _, err := revoke(s, serial, ca.ReasonUnspecified, at); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("RevokeCertificate(%s) = %v, want ErrNotFound", serial, err)
		}
	}
	st, err := s.CertificateStatus(ctx, "a1")
	if err != nil || !st.Issued || st.IssuerID != "issuerA" || st.Reason != ca.ReasonKeyCompromise || !st.RevokedAt.Equal(at) || !st.NotAfter.Equal(later) {
		t.Errorf("CertificateStatus(a1) = %+v, %v", st, err)
	}
	if st, err := s.CertificateStatus(ctx, "a2"); err != nil || st.Issued || st.Revoked() {
		t.Errorf("CertificateStatus(reserved a2) = %+v, %v", st, err)
	}
	if _, err := s.CertificateStatus(ctx, "nonesuch"); !errors.Is(err, ca.ErrUnknownCertificate) {
		t.Errorf("CertificateStatus(nonesuch) = %v, want ErrUnknownCertificate", err)
	}
	// Blocking the key inside the revoking transaction.
	inTx(t, s, func(tx enrol.Tx) error { return tx.BlockKey(spki("a1"), "keyCompromise") })
	inTx(t, s, func(tx enrol.Tx) error { return tx.BlockKey(spki("a1"), "again") })
	err = s.ReserveSerial(ctx, ca.Reservation{Serial: "a3", IssuerID: "issuerA", Profile: ca.DefaultProfile, Mailbox: "a@example.com",
		SPKIHash: spki("a1"), NotBefore: base, NotAfter: later, LintDER: []byte{1}})
	if !errors.Is(err, ca.ErrKeyInUse) {
		t.Errorf("ReserveSerial with a revoked, blocked key = %v, want ErrKeyInUse", err)
	}

	// Concurrent revocations of one certificate: one revokes it.
	issue(t, s, "c1", "issuerA", "c1@example.com", later)
	var wg sync.WaitGroup
	res := make([]bool, 4)
	for i := range res {
		wg.Go(func() {
			_, ok, err := revoke(s, "c1", ca.ReasonSuperseded, at)
			if err != nil {
				t.Errorf("racing RevokeCertificate: %v", err)
			}
			res[i] = ok
		})
	}
	wg.Wait()
	if n := len(slices.DeleteFunc(res, func(b bool) bool { return !b })); n != 1 {
		t.Errorf("%d racing revocations revoked, want 1", n)
	}
	if seq, _ := s.RevocationSeq(ctx, "issuerA"); seq != 2 {
		t.Errorf("RevocationSeq after two revocations = %d, want 2", seq)
	}
}

// testRevocationFeed checks the sequence numbers, the feed, and what the
// CRL reads: per issuer, revoked only, not expired.
func testRevocationFeed(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base
	for i := range 5 {
		issue(t, s, "a"+strconv.Itoa(i), "issuerA", "a@example.com", now.Add(time.Duration(i)*time.Hour))
	}
	issue(t, s, "b0", "issuerB", "b@example.com", now.Add(time.Hour))
	issue(t, s, "a9", "issuerA", "a@example.com", now.Add(time.Hour)) // never revoked
	for _, serial := range []string{"a3", "a0", "b0", "a1", "a4"} {
		if _, _, err := revoke(s, serial, ca.ReasonCessationOfOperation, now); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := s.RevocationSeq(ctx, "issuerA"); err != nil || seq != 4 {
		t.Errorf("RevocationSeq(A) = %d, %v; want 4", seq, err)
	}
	if seq, _ := s.RevocationSeq(ctx, "issuerB"); seq != 1 {
		t.Errorf("RevocationSeq(B) = %d, want 1", seq)
	}
	if seq, err := s.RevocationSeq(ctx, "issuerC"); err != nil || seq != 0 {
		t.Errorf("RevocationSeq(C) = %d, %v; want 0", seq, err)
	}
	got, last, err := s.RevokedSince(ctx, "issuerA", 0, 3)
	if err != nil || !slices.Equal(got, []string{"a3", "a0", "a1"}) || last != 3 {
		t.Errorf("RevokedSince(A, 0, 3) = %v, %d, %v", got, last, err)
	}
	got, last, _ = s.RevokedSince(ctx, "issuerA", last, 3)
	if !slices.Equal(got, []string{"a4"}) || last != 4 {
		t.Errorf("RevokedSince(A, 3, 3) = %v, %d", got, last)
	}
	if got, last, _ = s.RevokedSince(ctx, "issuerA", 4, 3); len(got) != 0 || last != 4 {
		t.Errorf("RevokedSince(A, 4, 3) = %v, %d; want nothing, 4", got, last)
	}
	// The CRL at now+1h: a0 expired at now and drops off; a1 expires at
	// the very second and stays; b0 is another issuer's; a9 is not revoked.
	var listed []string
	seq, err := s.RevokedCertificates(ctx, "issuerA", now.Add(time.Hour), func(e *ca.RevokedEntry) error {
		if e.Reason != ca.ReasonCessationOfOperation || !e.RevokedAt.Equal(now) {
			t.Errorf("entry %s: %v at %s", e.Serial, e.Reason, e.RevokedAt)
		}
		listed = append(listed, string(e.Serial))
		return nil
	})
	slices.Sort(listed)
	if err != nil || seq != 4 || !slices.Equal(listed, []string{"a1", "a3", "a4"}) {
		t.Errorf("RevokedCertificates(A) = %v, seq %d, %v; want a1, a3, a4 at 4", listed, seq, err)
	}
	stop := errors.New("stop")
	if _, err := s.RevokedCertificates(ctx, "issuerA", now, func(*ca.RevokedEntry) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("RevokedCertificates did not return the callback's error: %v", err)
	}
	if seq, err := s.RevokedCertificates(ctx, "issuerC", now, func(*ca.RevokedEntry) error { return stop }); err != nil || seq != 0 {
		t.Errorf("RevokedCertificates(C) = %d, %v; want 0, nil", seq, err)
	}
}

func testRevocationLinks(t *testing.T, s store.Store) {
	ctx := context.Background()
	issue(t, s, "c1", "iss", "a@example.com", base.Add(time.Hour))
	h := spki("token")
	inTx(t, s, func(tx enrol.Tx) error {
		return tx.InsertRevocationLink(enrol.RevocationLink{Hash: h, Serial: "c1", Mailbox: "a@example.com", ExpiresAt: base.Add(time.Hour)})
	})
	l, err := s.RevocationLink(ctx, h)
	if err != nil || l.Serial != "c1" || l.Mailbox != "a@example.com" || !l.ExpiresAt.Equal(base.Add(time.Hour)) || !bytes.Equal(l.Hash, h) {
		t.Errorf("RevocationLink = %+v, %v", l, err)
	}
	if _, err := s.RevocationLink(ctx, spki("other")); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("RevocationLink(missing) = %v, want ErrNotFound", err)
	}
}

func testLifecycle(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	// Invitations lapsing at base+1h, +2h, +3h; one submitted.
	var inv []*enrol.Enrolment
	for i := range 3 {
		e := newEnrolment("p", fmt.Sprint("inv", i, "@example.com"))
		e.ExpiresAt = base.Add(time.Duration(3-i) * time.Hour)
		inv = append(inv, e)
	}
	insert(t, s, inv...)
	if err := transition(s, mustEnrolment(t, s, inv[0].ID), enrol.Submitted); err != nil {
		t.Fatal(err)
	}
	got, err := s.LapsedInvitations(ctx, base.Add(3*time.Hour), 10)
	if err != nil || !slices.Equal(ids(got), []int64{inv[2].ID, inv[1].ID}) {
		t.Errorf("LapsedInvitations = %v, %v; want %d, %d (soonest first, not the submitted one)", ids(got), err, inv[2].ID, inv[1].ID)
	}
	if got, _ := s.LapsedInvitations(ctx, base.Add(3*time.Hour), 1); len(got) != 1 {
		t.Errorf("LapsedInvitations(limit 1) = %d", len(got))
	}

	// Certificates: c1 ends at base+1d, c2 at base+2d, c3 at base+40d.
	var iss []*enrol.Enrolment
	for i, days := range []int{1, 2, 40} {
		serial := fmt.Sprint("c", i+1)
		issue(t, s, serial, "iss", serial+"@example.com", base.Add(time.Duration(days)*24*time.Hour))
		e := newEnrolment("p", serial+"@example.com")
		insert(t, s, e)
		e = mustEnrolment(t, s, e.ID)
		next := *e
		next.State, next.Serial, next.IssuedAt = enrol.Issued, serial, base
		inTx(t, s, func(tx enrol.Tx) error { return tx.Transition(e.ID, e.State, e.Rev, &next) })
		iss = append(iss, e)
	}
	issue(t, s, "c9", "iss", "cli@example.com", base.Add(5*24*time.Hour)) // issued outside enrolment
	got, err = s.LapsedCertificates(ctx, base.Add(2*24*time.Hour), 10)
	if err != nil || !slices.Equal(ids(got), []int64{iss[0].ID, iss[1].ID}) {
		t.Errorf("LapsedCertificates = %v, %v", ids(got), err)
	}
	exp, err := s.ExpiringCertificates(ctx, base.Add(24*time.Hour), base.Add(30*24*time.Hour))
	if err != nil || len(exp) != 2 || exp[0].Serial != "c2" || exp[1].Serial != "c9" || exp[0].EnrolmentID != iss[1].ID || exp[1].EnrolmentID != 0 ||
		exp[0].Mailbox != "c2@example.com" || exp[0].Profile != ca.DefaultProfile || !exp[0].NotAfter.Equal(base.Add(48*time.Hour)) || !exp[0].NotBefore.Equal(base.Add(47*time.Hour)) {
		t.Errorf("ExpiringCertificates = %+v, %v; want c2 then c9", exp, err)
	}
	// A revoked certificate, and one whose renewal was issued, need no
	// reminder.
	if _, _, err := revoke(s, "c9", ca.ReasonSuperseded, base); err != nil {
		t.Fatal(err)
	}
	issue(t, s, "c2r", "iss", "c2@example.com", base.Add(400*24*time.Hour))
	r := newEnrolment("p", "c2@example.com")
	r.Channel, r.RenewalOf = enrol.ViaRenewal, "c2"
	insert(t, s, r)
	if exp, _ := s.ExpiringCertificates(ctx, base.Add(24*time.Hour), base.Add(30*24*time.Hour)); len(exp) != 1 || exp[0].Serial != "c2" {
		t.Errorf("with c9 revoked and c2's renewal pending: %+v, want c2 still", exp)
	}
	r = mustEnrolment(t, s, r.ID)
	next := *r
	next.State, next.Serial = enrol.Issued, "c2r"
	inTx(t, s, func(tx enrol.Tx) error { return tx.Transition(r.ID, r.State, r.Rev, &next) })
	if exp, _ := s.ExpiringCertificates(ctx, base.Add(24*time.Hour), base.Add(30*24*time.Hour)); len(exp) != 0 {
		t.Errorf("with c2 renewed: %+v, want none", exp)
	}
}

func testReminders(t *testing.T, s store.Store) {
	ctx := context.Background()
	issue(t, s, "c1", "iss", "a@example.com", base.Add(10*24*time.Hour))
	mark := func(days int) bool {
		var first bool
		inTx(t, s, func(tx enrol.Tx) error {
			ltx, ok := tx.(enrol.LifecycleTx)
			if !ok {
				t.Fatalf("%T is no enrol.LifecycleTx", tx)
			}
			var err error
			first, err = ltx.MarkReminder("c1", days, base)
			return err
		})
		return first
	}
	if !mark(30) || mark(30) {
		t.Error("MarkReminder(30) twice: want true, then false")
	}
	if !mark(7) {
		t.Error("MarkReminder(7) = false, want true")
	}
	exp, err := s.ExpiringCertificates(ctx, base, base.Add(30*24*time.Hour))
	if err != nil || len(exp) != 1 || exp[0].RemindedDays != 7 {
		t.Errorf("ExpiringCertificates = %+v, %v; want c1 reminded at 7 days", exp, err)
	}
	// Concurrent reminders of one threshold: recorded once.
	var wg sync.WaitGroup
	firsts := make([]bool, 4)
	for i := range firsts {
		wg.Go(func() {
			err := s.InTx(ctx, func(tx enrol.Tx) error {
				var err error
				firsts[i], err = tx.(enrol.LifecycleTx).MarkReminder("c1", 1, base)
				return err
			})
			if err != nil {
				t.Errorf("racing MarkReminder: %v", err)
			}
		})
	}
	wg.Wait()
	if n := len(slices.DeleteFunc(firsts, func(b bool) bool { return !b })); n != 1 {
		t.Errorf("%d racing reminders were first, want 1", n)
	}
}

var sampleEvents = []enrol.Event{
	{Actor: "cli", Action: "batch.start", Object: "batch:1", Detail: "policy default, file people.csv"},           // 1
	{Actor: "cli", Action: "enrolment.invite", Object: "enrolment:1", Detail: "policy default v1, a@example.com"}, // 2
	{Actor: "cli", Action: "enrolment.invite", Object: "enrolment:2", Detail: "policy default v1, b@example.com"}, // 3
	{Actor: "cli", Action: "enrolment.invite", Object: "enrolment:12", Detail: "policy default v1, c@example.com"},
	{Actor: "user:a@example.com", Action: "enrolment.submit", Object: "enrolment:1", Detail: "terms v1"}, // 5
	{Actor: "admin:ann@example.com", Action: "enrolment.approve", Object: "enrolment:1", Detail: "manual"},
	{Actor: "cli", Action: "batch.done", Object: "batch:1", Detail: "3 invited"}, // 7
	{Actor: "cli", Action: "odd", Object: "x%_y", Detail: ""},
	{Actor: "cli", Action: "odd", Object: "Xé\U0010FFFFz", Detail: "after the last code point"}, // 9
}

// writeEvents appends evs, one transaction each, a minute apart from base.
func writeEvents(t *testing.T, s store.Store, evs ...enrol.Event) {
	t.Helper()
	now := base
	setClock(t, s, func() time.Time { return now })
	for _, e := range evs {
		inTx(t, s, func(tx enrol.Tx) error { return tx.Audit(e) })
		now = now.Add(time.Minute)
	}
}

func testAuditChain(t *testing.T, s store.Store) {
	ctx := context.Background()
	calls := 0
	if err := s.AuditEvents(ctx, func(audit.Record) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("AuditEvents on an empty log: %d calls, %v", calls, err)
	}
	writeEvents(t, s, sampleEvents[:4]...)
	// AuditAll appends several in one transaction.
	setClock(t, s, func() time.Time { return base.Add(4 * time.Minute) })
	inTx(t, s, func(tx enrol.Tx) error { return tx.AuditAll(sampleEvents[4:5]) })
	setClock(t, s, func() time.Time { return base.Add(5 * time.Minute) })
	inTx(t, s, func(tx enrol.Tx) error {
		if err := tx.Audit(sampleEvents[5]); err != nil {
			return err
		}
		return tx.AuditAll(sampleEvents[6:])
	})
	var v audit.Verifier
	var seqs []int64
	err := s.AuditEvents(ctx, func(r audit.Record) error {
		seqs = append(seqs, r.Seq)
		e := sampleEvents[r.Seq-1]
		if r.Actor != e.Actor || r.Action != e.Action || r.Object != e.Object || r.Detail != e.Detail {
			t.Errorf("event %d = %+v, want %+v", r.Seq, r, e)
		}
		if want := base.Add(time.Duration(min(r.Seq-1, 5)) * time.Minute); !r.At.Equal(want) {
			t.Errorf("event %d at %v, want %v", r.Seq, r.At, want)
		}
		return v.Next(r)
	})
	if err != nil || !slices.Equal(seqs, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("AuditEvents = %v, %v", seqs, err)
	}
	stop := errors.New("stop")
	n := 0
	err = s.AuditEvents(ctx, func(audit.Record) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("AuditEvents with a failing fn: %d calls, %v; want 3, %v", n, err, stop)
	}
	// A rolled-back transaction leaves no event.
	fail := errors.New("roll back")
	if err := s.InTx(ctx, func(tx enrol.Tx) error {
		if err := tx.Audit(enrol.Event{Actor: "cli", Action: "never"}); err != nil {
			return err
		}
		return fail
	}); !errors.Is(err, fail) {
		t.Errorf("InTx = %v, want fn's error", err)
	}
	var v2 audit.Verifier
	if err := s.AuditEvents(ctx, v2.Next); err != nil || v2.Count() != 9 {
		t.Errorf("after a rollback: %d events, %v; want 9", v2.Count(), err)
	}
}

func testAuditFilter(t *testing.T, s store.Store) {
	ctx := context.Background()
	writeEvents(t, s, sampleEvents...)
	at := func(seq int) time.Time { return base.Add(time.Duration(seq-1) * time.Minute) }
	tests := []struct {
		name string
		q    store.AuditQuery
		want []int64 // newest first
	}{
		{"all", store.AuditQuery{}, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"actor", store.AuditQuery{Actor: "user:a@example.com"}, []int64{5}},
		{"actor is exact", store.AuditQuery{Actor: "user:"}, nil},
		{"action", store.AuditQuery{Action: "enrolment.invite"}, []int64{4, 3, 2}},
		{"object prefix", store.AuditQuery{Object: "enrolment:1"}, []int64{6, 5, 4, 2}},
		{"object kind", store.AuditQuery{Object: "batch:"}, []int64{7, 1}},
		{"object exact match", store.AuditQuery{Object: "enrolment:2"}, []int64{3}},
		{"object prefix is case-sensitive", store.AuditQuery{Object: "Batch:"}, nil},
		{"wildcards are literal", store.AuditQuery{Object: "x%"}, []int64{8}},
		{"prefix ending in the last code point", store.AuditQuery{Object: "Xé\U0010FFFF"}, []int64{9}},
		{"since", store.AuditQuery{Since: at(8)}, []int64{9, 8}},
		{"until", store.AuditQuery{Until: at(3)}, []int64{2, 1}},
		{"since and until", store.AuditQuery{Since: at(3), Until: at(5)}, []int64{4, 3}},
		{"time in another zone", store.AuditQuery{Since: at(9).In(time.FixedZone("X", 5*3600))}, []int64{9}},
		{"before", store.AuditQuery{Before: 3}, []int64{2, 1}},
		{"limit", store.AuditQuery{Limit: 2}, []int64{9, 8}},
		{"combined", store.AuditQuery{Actor: "cli", Action: "enrolment.invite", Object: "enrolment:1", Since: at(2)}, []int64{4, 2}},
		{"nothing", store.AuditQuery{Action: "certificate.revoke"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := s.AuditFilter(ctx, tt.q)
			if got := seqsOf(rs); err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("AuditFilter(%+v) = %v, %v; want %v", tt.q, got, err, tt.want)
			}
			var scanned []audit.Record
			err = s.AuditScan(ctx, tt.q, func(r audit.Record) error { scanned = append(scanned, r); return nil })
			want := slices.Clone(tt.want)
			if tt.q.Limit > 0 {
				want = []int64{9, 8, 7, 6, 5, 4, 3, 2, 1} // AuditScan ignores Limit
			}
			slices.Reverse(want)
			if got := seqsOf(scanned); err != nil || !slices.Equal(got, want) {
				t.Errorf("AuditScan(%+v) = %v, %v; want %v", tt.q, got, err, want)
			}
		})
	}
	// Pages through Before.
	var got []int64
	q := store.AuditQuery{Limit: 4}
	for {
		page, err := s.AuditFilter(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, seqsOf(page)...)
		q.Before = page[len(page)-1].Seq
	}
	if !slices.Equal(got, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1}) {
		t.Errorf("paging gave %v", got)
	}
	for _, limit := range []int{0, -1, 5000} {
		if rs, _ := s.AuditFilter(ctx, store.AuditQuery{Limit: limit}); len(rs) != 9 {
			t.Errorf("AuditFilter(Limit: %d) = %d events, want 9", limit, len(rs))
		}
	}
}

func seqsOf(rs []audit.Record) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

// testAuditConcurrent appends from several goroutines at once, as nodes
// sharing a database do: the chain stays whole.
func testAuditConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 5 {
				err := s.InTx(ctx, func(tx enrol.Tx) error {
					if err := tx.InsertEnrolment(newEnrolment("p", fmt.Sprintf("g%d-%d@example.com", g, i))); err != nil {
						return err
					}
					return tx.AuditAll([]enrol.Event{
						{Actor: "cli", Action: "enrolment.invite", Object: fmt.Sprint("g", g)},
						{Actor: "cli", Action: "enrolment.note", Object: fmt.Sprint("g", g)},
					})
				})
				if err != nil {
					t.Errorf("appending: %v", err)
				}
			}
		})
	}
	wg.Wait()
	var v audit.Verifier
	if err := s.AuditEvents(ctx, v.Next); err != nil || v.Count() != 60 {
		t.Errorf("after concurrent appends: %d events verified, %v; want 60", v.Count(), err)
	}
}

func testCounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, c := range []func() (int, error){
		func() (int, error) { m, err := s.CountEnrolments(ctx); return len(m), err },
		func() (int, error) { m, err := countCertificates(t, s); return len(m), err },
		func() (int, error) { m, err := s.Counts(ctx); return len(m), err },
	} {
		if n, err := c(); err != nil || n != 0 {
			t.Errorf("counts of an empty store: %d states, %v", n, err)
		}
	}
	savePolicy(t, s, "p")
	var es []*enrol.Enrolment
	for i := range 5 {
		es = append(es, newEnrolment("p", fmt.Sprint(i, "@example.com")))
	}
	insert(t, s, es...)
	for _, e := range es[:2] {
		if err := transition(s, mustEnrolment(t, s, e.ID), enrol.Submitted); err != nil {
			t.Fatal(err)
		}
	}
	if err := transition(s, mustEnrolment(t, s, es[2].ID), enrol.Cancelled); err != nil {
		t.Fatal(err)
	}
	got, err := s.CountEnrolments(ctx)
	want := map[enrol.State]int{enrol.Invited: 2, enrol.Submitted: 2, enrol.Cancelled: 1}
	if err != nil || len(got) != len(want) {
		t.Fatalf("CountEnrolments = %v, %v; want %v", got, err, want)
	}
	for st, n := range want {
		if got[st] != n {
			t.Errorf("CountEnrolments[%s] = %d, want %d", st, got[st], n)
		}
	}
}

func testPingVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	v, err := s.Version(ctx)
	if err != nil || v < 7 {
		t.Errorf("Version = %d, %v; want at least 7", v, err)
	}
}

// testTxReads: a transaction reads its own writes through Tx (an
// enrolment with its approvers, a policy version saved in it), and sees
// the same as Store for what it did not write.
func testTxReads(t *testing.T, s store.Store) {
	savePolicy(t, s, "p")
	e := newEnrolment("p", "tx@example.com")
	insert(t, s, e)
	inTx(t, s, func(tx enrol.Tx) error {
		got, err := tx.Enrolment(e.ID)
		if err != nil || got.Mailbox != "tx@example.com" || got.State != enrol.Invited {
			t.Errorf("Tx.Enrolment(%d) = %+v, %v", e.ID, got, err)
		}
		if _, err := tx.Enrolment(e.ID + 1000); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("Tx.Enrolment(missing) = %v, want ErrNotFound", err)
		}
		up := *got
		up.State, up.SubmittedAt, up.UpdatedAt = enrol.Submitted, base, base
		if err := tx.Transition(e.ID, enrol.Invited, got.Rev, &up); err != nil {
			return err
		}
		if _, err := tx.AddApprover(e.ID, "ann", base); err != nil {
			return err
		}
		got, err = tx.Enrolment(e.ID)
		if err != nil || got.State != enrol.Submitted || !slices.Equal(got.Approvers, []string{"ann"}) {
			t.Errorf("Tx.Enrolment after its own writes = %+v, %v; want submitted, approver ann", got, err)
		}
		if _, err := tx.SavePolicy("p", `{"name":"p","v":2}`, "test", 0); !errors.Is(err, enrol.ErrStale) {
			t.Errorf("Tx.SavePolicy(base 0) of an existing policy = %v, want ErrStale", err)
		}
		if _, err := tx.SavePolicy("p", `{"name":"p","v":2}`, "test", 2); !errors.Is(err, enrol.ErrStale) {
			t.Errorf("Tx.SavePolicy(base 2) over version 1 = %v, want ErrStale", err)
		}
		v, err := tx.SavePolicy("p", `{"name":"p","v":2}`, "test", 1)
		if err != nil {
			return err
		}
		if body, gv, err := tx.Policy("p"); err != nil || gv != v || body != `{"name":"p","v":2}` {
			t.Errorf("Tx.Policy = %q, %d, %v; want version %d", body, gv, err, v)
		}
		if body, err := tx.PolicyAt("p", 1); err != nil || body != `{"name":"p"}` {
			t.Errorf("Tx.PolicyAt(p, 1) = %q, %v", body, err)
		}
		if _, _, err := tx.Policy("nope"); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("Tx.Policy(missing) = %v, want ErrNotFound", err)
		}
		if _, err := tx.PolicyAt("p", 9); !errors.Is(err, enrol.ErrNotFound) {
			t.Errorf("Tx.PolicyAt(p, 9) = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// testAbandonReservation: a reservation older than the cut-off and never
// stored is refused, freeing its once key; a newer one and a stored
// certificate are left alone.
func testAbandonReservation(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := base
	setClock(t, s, func() time.Time { return now })
	reserve(t, s, "a1", "iss", "a@example.com", base.Add(24*time.Hour), "enrolment:1")
	reserve(t, s, "a2", "iss", "b@example.com", base.Add(24*time.Hour), "enrolment:2")
	if err := s.StoreCertificate(ctx, "a2", []byte{9}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AbandonReservation(ctx, "enrolment:1", base); err != nil || ok {
		t.Errorf("AbandonReservation(as old as the cut-off) = %v, %v; want false", ok, err)
	}
	now = base.Add(time.Hour)
	if ok, err := s.AbandonReservation(ctx, "enrolment:2", now); err != nil || ok {
		t.Errorf("AbandonReservation(stored) = %v, %v; want false", ok, err)
	}
	if ok, err := s.AbandonReservation(ctx, "enrolment:1", now); err != nil || !ok {
		t.Errorf("AbandonReservation(stale) = %v, %v; want true", ok, err)
	}
	if ok, err := s.AbandonReservation(ctx, "enrolment:1", now); err != nil || ok {
		t.Errorf("AbandonReservation twice = %v, %v; want false", ok, err)
	}
	if err := s.StoreCertificate(ctx, "a1", []byte{9}); err == nil {
		t.Error("StoreCertificate of an abandoned serial succeeded")
	}
	reserve(t, s, "a3", "iss", "a@example.com", base.Add(24*time.Hour), "enrolment:1")
}
