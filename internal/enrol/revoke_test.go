package enrol_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
)

// activated runs one enrolment to an issued certificate under a
// pre-approved policy and returns the activation.
func (f *fixture) activated(t *testing.T, addr string) *enrol.Activation {
	t.Helper()
	ctx := context.Background()
	if _, err := f.svc.Invite(ctx, "admin:inviter", "staff", enrol.Invitee{Email: addr, GivenName: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Submit(ctx, f.lastLink(t, addr, "/e/"), accept(nil)); err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.Activate(ctx, f.lastLink(t, addr, "/a/"), enrol.KeyServer, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func preApproved(p *enrol.Policy) { p.Approval.Mode = enrol.ApprovePreApproved }

// mails returns the templates of the mails to addr, newest first.
func (f *fixture) mails(t *testing.T, addr string) []outbox.Message {
	t.Helper()
	msgs, err := f.db.Messages(context.Background(), outbox.Filter{To: addr})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func (f *fixture) revokeEvents(t *testing.T, serial string) []string {
	t.Helper()
	evs, err := f.db.AuditFilter(context.Background(), sqlite.AuditQuery{Action: "certificate.revoke", Object: "certificate:" + serial})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Actor+" "+e.Detail)
	}
	return out
}

// TestRevoke revokes a certificate issued through enrolment: in one
// transaction the certificate is revoked, the enrolment moves to revoked,
// the subscriber is mailed and the audit log records it.
func TestRevoke(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "alice@example.com")
	serial := ca.SerialHex(a.Cert.Cert.SerialNumber)

	// The serial as openssl prints it: upper case with colons.
	colons := strings.ToUpper(a.Cert.Cert.SerialNumber.Text(16))
	var parts []string
	for len(colons) > 2 {
		parts, colons = append(parts, colons[:2]), colons[2:]
	}
	parts = append(parts, colons)
	res, err := f.svc.Revoke(ctx, "admin:ra@example.com", strings.Join(parts, ":"), ca.ReasonAffiliationChanged)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if res.Serial != serial || res.AlreadyRevoked || res.KeyBlocked || res.EnrolmentID != a.Enrolment.ID || res.Reason != ca.ReasonAffiliationChanged || res.Mailbox != "alice@example.com" {
		t.Errorf("Revoke = %+v", res)
	}
	if !res.RevokedAt.Equal(f.clock.now().UTC().Truncate(time.Second)) {
		t.Errorf("revoked at %s, want the service's clock %s", res.RevokedAt, f.clock.now())
	}

	st, err := f.db.CertificateStatus(ctx, serial)
	if err != nil || !st.Revoked() || st.Reason != ca.ReasonAffiliationChanged || !st.RevokedAt.Equal(res.RevokedAt) {
		t.Errorf("stored status = %+v, %v", st, err)
	}
	if e, _ := f.svc.Enrolment(ctx, a.Enrolment.ID); e.State != enrol.Revoked || e.Reason != "affiliationChanged" {
		t.Errorf("enrolment %s (%q), want revoked", e.State, e.Reason)
	}
	msgs := f.mails(t, "alice@example.com")
	if len(msgs) == 0 || msgs[0].Template != "revoked" || msgs[0].Data["Serial"] != serial || msgs[0].Data["GivenName"] != "Alice" || msgs[0].Data["ReasonCode"] != "affiliationChanged" {
		t.Errorf("mails to alice = %+v, want the revoked notice first", msgs)
	}
	tm, err := outbox.NewTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tm.Render(msgs[0]); err != nil {
		t.Errorf("the revoked mail does not render with the data Revoke stores: %v", err)
	}
	if evs := f.revokeEvents(t, serial); len(evs) != 1 || !strings.HasPrefix(evs[0], "admin:ra@example.com reason affiliationChanged") {
		t.Errorf("audit events = %q", evs)
	}
	// The person may be invited again, since nothing of theirs is live.
	if _, err := f.svc.Invite(ctx, "admin:inviter", "staff", enrol.Invitee{Email: "alice@example.com"}); err != nil {
		t.Errorf("inviting again after revocation: %v", err)
	}
}

// TestRevokeTwice: the second revocation changes nothing, not even with
// another reason, and says so.
func TestRevokeTwice(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "bob@example.com")
	serial := ca.SerialHex(a.Cert.Cert.SerialNumber)
	first, err := f.svc.Revoke(ctx, "admin:one", serial, ca.ReasonSuperseded)
	if err != nil {
		t.Fatal(err)
	}
	mails := len(f.mails(t, "bob@example.com"))
	f.clock.advance(time.Hour)
	second, err := f.svc.Revoke(ctx, "admin:two", serial, ca.ReasonCessationOfOperation)
	if err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if !second.AlreadyRevoked || second.Reason != ca.ReasonSuperseded || !second.RevokedAt.Equal(first.RevokedAt) {
		t.Errorf("second Revoke = %+v, want already revoked, as first (%s at %s)", second, first.Reason, first.RevokedAt)
	}
	if n := len(f.mails(t, "bob@example.com")); n != mails {
		t.Errorf("second Revoke sent mail: %d mails, had %d", n, mails)
	}
	if evs := f.revokeEvents(t, serial); len(evs) != 1 {
		t.Errorf("audit events after two revocations = %q, want one", evs)
	}
}

// TestRevokeKeyCompromise: the key is blocked, so it can never be
// certified again, through enrolment or otherwise.
func TestRevokeKeyCompromise(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "carol@example.com")
	res, err := f.svc.Revoke(ctx, "admin:sec", ca.SerialHex(a.Cert.Cert.SerialNumber), ca.ReasonKeyCompromise)
	if err != nil {
		t.Fatal(err)
	}
	if !res.KeyBlocked {
		t.Errorf("KeyBlocked = false after keyCompromise")
	}
	spki, err := keys.SPKIHash(a.Cert.Cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if blocked, err := f.db.KeyBlocked(ctx, spki); err != nil || !blocked {
		t.Errorf("KeyBlocked(spki) = %v, %v; want true", blocked, err)
	}
	if evs := f.revokeEvents(t, res.Serial); len(evs) != 1 || !strings.Contains(evs[0], "key blocked") {
		t.Errorf("audit events = %q, want the key block recorded", evs)
	}
	msgs := f.mails(t, "carol@example.com")
	if msgs[0].Template != "revoked" || msgs[0].Data["ReasonCode"] != "keyCompromise" {
		t.Errorf("newest mail = %s %v", msgs[0].Template, msgs[0].Data)
	}
}

// TestRevokeOutsideEnrolment revokes a certificate issued with the engine
// directly ('mailca issue'): no enrolment changes, the mailbox is mailed.
func TestRevokeOutsideEnrolment(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	addr, _ := mailbox.Parse("dave@example.com")
	engine := testkit.NewEngine(t, testkit.NewHierarchy(t, keys.ECDSAP256), f.db)
	c, err := engine.Issue(ctx, ca.Request{PublicKey: keys.MustGenerate(keys.ECDSAP256).Public(), Mailbox: addr})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Revoke(ctx, "cli", ca.SerialHex(c.Cert.SerialNumber), ca.ReasonUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if res.EnrolmentID != 0 || res.AlreadyRevoked {
		t.Errorf("Revoke = %+v", res)
	}
	msgs := f.mails(t, "dave@example.com")
	if len(msgs) != 1 || msgs[0].Template != "revoked" || msgs[0].Data["GivenName"] != "" {
		t.Errorf("mails to dave = %+v, want one revoked notice", msgs)
	}
}

// TestRevokeRefuses covers what may not be revoked, or not so.
func TestRevokeRefuses(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "erin@example.com")
	serial := ca.SerialHex(a.Cert.Cert.SerialNumber)
	reserved := "4d2c3b4a59687766554433221100ffeeddccbbaa"
	if err := f.db.ReserveSerial(ctx, ca.Reservation{Serial: reserved, IssuerID: "x", Profile: ca.DefaultProfile, Mailbox: "x@example.com",
		SPKIHash: []byte("0123456789abcdef0123456789abcdef"), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), LintDER: []byte{0}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		serial string
		reason ca.RevocationReason
		actor  string
		kind   errs.Kind
	}{
		{"unknown serial", "1234abcd", ca.ReasonUnspecified, "cli", errs.NotFound},
		{"reserved, never signed", reserved, ca.ReasonUnspecified, "cli", errs.NotFound},
		{"not hexadecimal", "xyz", ca.ReasonUnspecified, "cli", errs.Invalid},
		{"empty serial", "", ca.ReasonUnspecified, "cli", errs.Invalid},
		{"certificateHold", serial, ca.RevocationReason(6), "cli", errs.Invalid},
		{"cACompromise", serial, ca.RevocationReason(2), "cli", errs.Invalid},
		{"no actor", serial, ca.ReasonUnspecified, "", errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Revoke(ctx, tt.actor, tt.serial, tt.reason)
			if err == nil || errs.KindOf(err) != tt.kind {
				t.Errorf("Revoke(%q, %v) = %v, want an error of kind %v", tt.serial, tt.reason, err, tt.kind)
			}
		})
	}
	if st, _ := f.db.CertificateStatus(ctx, serial); st.Revoked() {
		t.Errorf("a refused revocation revoked the certificate")
	}
	var e *errs.Error
	if _, err := f.svc.Revoke(ctx, "cli", serial, ca.RevocationReason(6)); !errors.As(err, &e) {
		t.Fatalf("forbidden reason: %v", err)
	}
	for _, name := range ca.RevocationReasons() {
		if !strings.Contains(e.Msg, name) {
			t.Errorf("the error for a forbidden reason does not name %s: %q", name, e.Msg)
		}
	}
}

// TestRevokeRace revokes one certificate from many goroutines: one wins,
// the others find it revoked, one mail and one audit event result.
func TestRevokeRace(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "fay@example.com")
	serial := ca.SerialHex(a.Cert.Cert.SerialNumber)
	before := len(f.mails(t, "fay@example.com"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.svc.Revoke(ctx, "admin:racer", serial, ca.ReasonPrivilegeWithdrawn)
			if err != nil {
				t.Errorf("Revoke: %v", err)
				return
			}
			if !res.AlreadyRevoked {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d revocations won, want 1", won)
	}
	if n := len(f.mails(t, "fay@example.com")) - before; n != 1 {
		t.Errorf("%d revoked mails, want 1", n)
	}
	if evs := f.revokeEvents(t, serial); len(evs) != 1 {
		t.Errorf("%d audit events, want 1", len(evs))
	}
}
