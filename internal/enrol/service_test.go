package enrol_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
)

// clock is a settable clock for expiry tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

type fixture struct {
	svc   *enrol.Service
	db    *sqlite.DB
	clock *clock
}

func newFixture(t *testing.T, edit func(p *enrol.Policy)) *fixture {
	t.Helper()
	db := testkit.MustOpenDB(t)
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	c := &clock{}
	c.t.Store(time.Now().UnixNano())
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: testkit.NewEngine(t, h, db), PublicURL: "https://certs.example.com", Now: c.now, ServerKeyType: keys.ECDSAP256})
	p := enrol.DefaultPolicy()
	p.Name = "staff"
	p.Notify = []string{"ra@example.com"}
	if edit != nil {
		edit(p)
	}
	if _, err := svc.SavePolicy(context.Background(), "test", p); err != nil {
		t.Fatalf("SavePolicy: %v", err)
	}
	return &fixture{svc: svc, db: db, clock: c}
}

// lastLink returns the token of the newest link mailed to addr with the
// given path prefix ("/e/" or "/a/").
func (f *fixture) lastLink(t *testing.T, addr, prefix string) string {
	t.Helper()
	msgs, err := f.db.Messages(context.Background(), outbox.Filter{To: addr})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if l := m.Data["Link"]; strings.Contains(l, prefix) {
			return l[strings.LastIndex(l, "/")+1:]
		}
	}
	t.Fatalf("no %s link mailed to %s", prefix, addr)
	return ""
}

func accept(p *enrol.Policy) enrol.Application {
	return enrol.Application{GivenName: "Alice", Surname: "Liddell", AcceptTerms: true, TermsVersion: "1"}
}

func TestInviteToIssue(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	e, err := f.svc.Invite(ctx, "admin:root@example.com", "staff", enrol.Invitee{Email: "Alice@Example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if e.State != enrol.Invited || e.Mailbox != "Alice@example.com" || e.PolicyVersion != 1 {
		t.Fatalf("invited enrolment = %+v", e)
	}
	token := f.lastLink(t, "Alice@example.com", "/e/")
	got, err := f.svc.Submit(ctx, token, accept(nil))
	if err != nil || got.State != enrol.Submitted {
		t.Fatalf("Submit = %+v, %v", got, err)
	}
	// The approver was told.
	if msgs, _ := f.db.Messages(ctx, outbox.Filter{To: "ra@example.com"}); len(msgs) != 1 || msgs[0].Template != "application" {
		t.Errorf("approver notices = %+v", msgs)
	}
	// The form link is spent: a replayed post is refused.
	if _, err := f.svc.Submit(ctx, token, accept(nil)); !errors.Is(err, enrol.ErrLinkInvalid) {
		t.Errorf("replayed Submit = %v, want ErrLinkInvalid", err)
	}
	if _, err := f.svc.Approve(ctx, "admin:ra@example.com", e.ID); err != nil {
		t.Fatal(err)
	}
	act := f.lastLink(t, "Alice@example.com", "/a/")
	a, err := f.svc.Activate(ctx, act, enrol.KeyServer, nil)
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if a.Password == "" || len(a.P12) == 0 || a.Cert.Cert.EmailAddresses[0] != "Alice@example.com" {
		t.Errorf("activation = %+v", a)
	}
	e, _ = f.svc.Enrolment(ctx, e.ID)
	if e.State != enrol.Issued || e.Serial == "" {
		t.Errorf("after activation: %+v", e)
	}
	if _, err := f.svc.Activate(ctx, act, enrol.KeyServer, nil); !errors.Is(err, enrol.ErrLinkInvalid) {
		t.Errorf("second Activate = %v, want ErrLinkInvalid", err)
	}
	msgs, _ := f.db.Messages(ctx, outbox.Filter{To: "Alice@example.com"})
	var templates []string
	for _, m := range msgs {
		templates = append(templates, m.Template)
	}
	if strings.Join(templates, ",") != "issued,approved,invitation" {
		t.Errorf("mails to the user = %v, want invitation, approved, issued", templates)
	}
	// Nobody is invited twice while an enrolment is live.
	_, err = f.svc.Invite(ctx, "admin:root@example.com", "staff", enrol.Invitee{Email: "alice@EXAMPLE.com"})
	var ierr *enrol.InviteError
	if !errors.As(err, &ierr) || ierr.Reason != "already invited or active" {
		t.Errorf("second invitation = %v", err)
	}
}

func TestAutomaticApprovalIsOneTransaction(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) { p.Approval.Mode = enrol.ApproveAutomatic })
	ctx := context.Background()
	e, _ := f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "bob@example.com"})
	got, err := f.svc.Submit(ctx, f.lastLink(t, "bob@example.com", "/e/"), accept(nil))
	if err != nil || got.State != enrol.Approved {
		t.Fatalf("Submit = %+v, %v; want approved at once", got, err)
	}
	f.lastLink(t, "bob@example.com", "/a/")
	if msgs, _ := f.db.Messages(ctx, outbox.Filter{To: "ra@example.com"}); len(msgs) != 0 {
		t.Errorf("approvers were notified of an automatic approval")
	}
	_ = e
}

func TestActivateWithCSR(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) { p.Approval.Mode = enrol.ApprovePreApproved })
	ctx := context.Background()
	f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "carol@example.com"})
	f.svc.Submit(ctx, f.lastLink(t, "carol@example.com", "/e/"), accept(nil))
	act := f.lastLink(t, "carol@example.com", "/a/")
	if _, err := f.svc.Activate(ctx, act, enrol.KeyCSR, []byte("not a csr")); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("Activate(garbage CSR) = %v, want an invalid-input error", err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{EmailAddresses: []string{"boss@example.com"}}, k)
	a, err := f.svc.Activate(ctx, act, enrol.KeyCSR, der)
	if err != nil {
		t.Fatalf("Activate(CSR) after a bad CSR: %v", err)
	}
	if a.P12 != nil || a.Cert.Cert.EmailAddresses[0] != "carol@example.com" {
		t.Errorf("CSR activation = %+v", a.Cert.Cert.EmailAddresses)
	}
}

// TestConcurrentActivation clicks one activation link many times at once:
// exactly one certificate comes out.
func TestConcurrentActivation(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) { p.Approval.Mode = enrol.ApproveAutomatic })
	ctx := context.Background()
	f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "dave@example.com"})
	f.svc.Submit(ctx, f.lastLink(t, "dave@example.com", "/e/"), accept(nil))
	act := f.lastLink(t, "dave@example.com", "/a/")
	var wg sync.WaitGroup
	var wins atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.svc.Activate(ctx, act, enrol.KeyServer, nil); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, enrol.ErrLinkInvalid) {
				t.Errorf("Activate: %v", err)
			}
		}()
	}
	wg.Wait()
	counts, _ := f.db.CountCertificates(ctx)
	if wins.Load() != 1 || counts["issued"] != 1 {
		t.Errorf("%d activations succeeded, %d certificates issued; want 1 and 1", wins.Load(), counts["issued"])
	}
}

// TestApproveRejectRace approves and rejects one application at once:
// exactly one outcome.
func TestApproveRejectRace(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for i := range 10 {
		addr := "race" + string(rune('a'+i)) + "@example.com"
		e, _ := f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: addr})
		f.svc.Submit(ctx, f.lastLink(t, addr, "/e/"), accept(nil))
		var wg sync.WaitGroup
		var aErr, rErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, aErr = f.svc.Approve(ctx, "admin:a", e.ID) }()
		go func() { defer wg.Done(); rErr = f.svc.Reject(ctx, "admin:b", e.ID, "not staff") }()
		wg.Wait()
		if (aErr == nil) == (rErr == nil) {
			t.Fatalf("approve err %v, reject err %v: want exactly one to succeed", aErr, rErr)
		}
		got, _ := f.svc.Enrolment(ctx, e.ID)
		if (aErr == nil && got.State != enrol.Approved) || (rErr == nil && got.State != enrol.Rejected) {
			t.Errorf("state %s after approve err %v / reject err %v", got.State, aErr, rErr)
		}
	}
}

func TestNofMAndSeparationOfDuties(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) { p.Approval.Required = 2; p.Approval.SeparateDuties = true })
	ctx := context.Background()
	e, _ := f.svc.Invite(ctx, "admin:inviter", "staff", enrol.Invitee{Email: "erin@example.com"})
	f.svc.Submit(ctx, f.lastLink(t, "erin@example.com", "/e/"), accept(nil))
	if _, err := f.svc.Approve(ctx, "admin:inviter", e.ID); errs.KindOf(err) != errs.Forbidden {
		t.Errorf("inviter approving = %v, want forbidden", err)
	}
	for _, who := range []string{"admin:one", "admin:one"} {
		if _, err := f.svc.Approve(ctx, who, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := f.svc.Enrolment(ctx, e.ID); got.State != enrol.Submitted || len(got.Approvers) != 1 {
		t.Errorf("after one approver twice: %s with %v", got.State, got.Approvers)
	}
	if _, err := f.svc.Approve(ctx, "admin:two", e.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.svc.Enrolment(ctx, e.ID); got.State != enrol.Approved {
		t.Errorf("after two approvers: %s", got.State)
	}
}

// TestNoSelfApproval: a console account cannot approve its own
// application, whatever the case of the address; another approver can.
func TestNoSelfApproval(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	e, _ := f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "gus@example.com"})
	f.svc.Submit(ctx, f.lastLink(t, "gus@example.com", "/e/"), accept(nil))
	if _, err := f.svc.Approve(ctx, "console:Gus@Example.com", e.ID); errs.KindOf(err) != errs.Forbidden {
		t.Errorf("applicant approving their own application = %v, want forbidden", err)
	}
	if got, _ := f.svc.Enrolment(ctx, e.ID); got.State != enrol.Submitted || len(got.Approvers) != 0 {
		t.Errorf("after the refused self-approval: %s with %v", got.State, got.Approvers)
	}
	if _, err := f.svc.Approve(ctx, "console:ann@example.com", e.ID); err != nil {
		t.Errorf("another account approving = %v", err)
	}
}

func TestLinksExpireAndAreSingleUse(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	e, _ := f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "fay@example.com"})
	token := f.lastLink(t, "fay@example.com", "/e/")
	tests := []struct{ name, token string }{
		{"empty", ""},
		{"junk", "../../etc/passwd"},
		{"unknown", strings.Repeat("A", 43)},
		{"truncated", token[:len(token)-1]},
		{"tampered", token[:len(token)-1] + map[bool]string{true: "A", false: "B"}[token[len(token)-1] != 'A']},
	}
	for _, tt := range tests {
		if _, _, err := f.svc.OpenLink(ctx, tt.token, enrol.PurposeInvitation); !errors.Is(err, enrol.ErrLinkInvalid) {
			t.Errorf("%s: OpenLink = %v", tt.name, err)
		}
	}
	// A link for one purpose does not work for another.
	if _, _, err := f.svc.OpenLink(ctx, token, enrol.PurposeActivation); !errors.Is(err, enrol.ErrLinkInvalid) {
		t.Errorf("invitation link opened as activation link")
	}
	f.clock.advance(15 * 24 * time.Hour)
	if _, err := f.svc.Submit(ctx, token, accept(nil)); !errors.Is(err, enrol.ErrLinkInvalid) {
		t.Errorf("Submit after expiry = %v", err)
	}
	// Resend replaces the link; the old one stays dead.
	if err := f.svc.Resend(ctx, "cli", e.ID); err != nil {
		t.Fatal(err)
	}
	fresh := f.lastLink(t, "fay@example.com", "/e/")
	if fresh == token {
		t.Fatal("resend mailed the same token")
	}
	if _, err := f.svc.Submit(ctx, fresh, accept(nil)); err != nil {
		t.Errorf("Submit with the resent link: %v", err)
	}
}

func TestFormValidation(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) {
		p.Fields = append(p.Fields, enrol.Field{Name: "staff_id", Label: "Staff ID", Required: true, Editable: true, Pattern: `[0-9]{6}`})
		p.Fields[0].Required = true
	})
	ctx := context.Background()
	f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "gil@example.com"})
	token := f.lastLink(t, "gil@example.com", "/e/")
	_, err := f.svc.Submit(ctx, token, enrol.Application{GivenName: "Gil\r\nBcc: x@example.com", Fields: map[string]string{"staff_id": "12ab"}, TermsVersion: "1"})
	var ferr *enrol.FormError
	if !errors.As(err, &ferr) {
		t.Fatalf("Submit = %v, want *FormError", err)
	}
	for _, field := range []string{"given_name", "staff_id", "terms"} {
		if ferr.Problems[field] == "" {
			t.Errorf("no problem reported for %s: %v", field, ferr.Problems)
		}
	}
	// The failed post did not spend the link.
	if _, err := f.svc.Submit(ctx, token, enrol.Application{GivenName: "Gil", Fields: map[string]string{"staff_id": "123456"}, AcceptTerms: true, TermsVersion: "1"}); err != nil {
		t.Errorf("valid Submit after a failed one: %v", err)
	}
}

func TestReferral(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	key := enrol.ReferralKey{ID: "portal", Secret: base64.RawURLEncoding.EncodeToString(secret)}
	f := newFixture(t, func(p *enrol.Policy) { p.Channels.Referral = true; p.ReferralKeys = []enrol.ReferralKey{key} })
	ctx := context.Background()
	now := f.clock.now()
	r := enrol.Referral{Email: "hal@example.com", GivenName: "Hal", Policy: "staff", IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix(), ID: "r-1"}
	tok, err := enrol.SignReferral(r, key)
	if err != nil {
		t.Fatal(err)
	}
	other := enrol.ReferralKey{ID: "portal", Secret: base64.RawURLEncoding.EncodeToString(make([]byte, 32))}
	forged, _ := enrol.SignReferral(r, other)
	expired := r
	expired.ID, expired.Expires = "r-2", now.Add(-time.Second).Unix()
	expiredTok, _ := enrol.SignReferral(expired, key)
	parts := strings.Split(tok, ".")
	noneAlg := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"portal"}`)) + "." + parts[1] + "."
	for name, bad := range map[string]string{"forged": forged, "expired": expiredTok, "alg none": noneAlg, "garbage": "a.b.c", "tampered": parts[0] + "." + parts[1] + "x." + parts[2]} {
		if _, _, err := f.svc.OpenReferral(ctx, bad); errs.KindOf(err) != errs.NotFound {
			t.Errorf("%s referral: %v", name, err)
		}
	}
	e, err := f.svc.SubmitReferral(ctx, tok, enrol.Application{GivenName: "Hal", AcceptTerms: true, TermsVersion: "1"})
	if err != nil || e.State != enrol.Submitted || e.Channel != enrol.ViaReferral {
		t.Fatalf("SubmitReferral = %+v, %v", e, err)
	}
	if _, err := f.svc.SubmitReferral(ctx, tok, enrol.Application{AcceptTerms: true, TermsVersion: "1"}); errs.KindOf(err) != errs.Conflict {
		t.Errorf("replayed referral = %v, want conflict", err)
	}
}

func TestOpenSelfEnrolment(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) { p.Channels.Open = true; p.AllowedDomains = []string{"example.com"} })
	ctx := context.Background()
	if err := f.svc.StartOpen(ctx, "staff", "ivy@example.com"); err != nil {
		t.Fatal(err)
	}
	// Asking again neither fails nor sends a second link.
	if err := f.svc.StartOpen(ctx, "staff", "IVY@example.com"); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := f.db.Messages(ctx, outbox.Filter{To: "ivy@example.com"}); len(msgs) != 1 || msgs[0].Template != "verification" {
		t.Errorf("mails = %+v", msgs)
	}
	if err := f.svc.StartOpen(ctx, "staff", "eve@evil.example"); errs.KindOf(err) != errs.Invalid {
		t.Errorf("StartOpen outside the allowed domains = %v", err)
	}
	if _, err := f.svc.Submit(ctx, f.lastLink(t, "ivy@example.com", "/e/"), accept(nil)); err != nil {
		t.Errorf("Submit after verification: %v", err)
	}
}

func TestPolicyValidation(t *testing.T) {
	p := enrol.DefaultPolicy()
	p.Name = "Bad Name"
	p.Approval.Mode = "sometimes"
	p.ActivationLifetime = enrol.Duration(48 * time.Hour)
	p.KeyModes = []enrol.KeyMode{"browser"}
	p.Profile = "ev"
	p.ValidityDays = 900
	p.Fields = append(p.Fields, enrol.Field{Name: "x", Pattern: "("})
	err := p.Validate()
	var verr *enrol.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate = %v", err)
	}
	want := map[string]bool{"name": true, "approval.mode": true, "activation_lifetime": true, "key_modes[0]": true, "profile": true, "validity_days": true, "fields[2].pattern": true}
	for _, pr := range verr.Problems {
		delete(want, pr.Field)
	}
	if len(want) > 0 {
		t.Errorf("problems not reported for %v (got %v)", want, verr.Problems)
	}
	if err := enrol.DefaultPolicy().Validate(); err != nil {
		t.Errorf("the default policy does not validate: %v", err)
	}
}

func TestPolicyValidationForVouchingProfiles(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(p *enrol.Policy)
		field string // "" means valid
	}{
		{"organization without domains", func(p *enrol.Policy) { p.Profile = "organization-strict" }, "allowed_domains"},
		{"organization with domains", func(p *enrol.Policy) { p.Profile = "organization-strict"; p.AllowedDomains = []string{"example.com"} }, ""},
		{"sponsor, automatic, editable names", func(p *enrol.Policy) {
			p.Profile, p.AllowedDomains, p.Approval.Mode = "sponsor-strict", []string{"example.com"}, enrol.ApproveAutomatic
		}, "fields[0].editable"},
		{"sponsor, manual, editable names", func(p *enrol.Policy) {
			p.Profile, p.AllowedDomains = "sponsor-strict", []string{"example.com"}
		}, ""},
		{"sponsor, pre-approved, names from the invitation", func(p *enrol.Policy) {
			p.Profile, p.AllowedDomains, p.Approval.Mode = "sponsor-multipurpose", []string{"example.com"}, enrol.ApprovePreApproved
			p.Fields[0].Editable, p.Fields[1].Editable = false, false
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := enrol.DefaultPolicy()
			tt.edit(p)
			err := p.Validate()
			var verr *enrol.ValidationError
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want a problem with %s", err, tt.field)
			}
			for _, pr := range verr.Problems {
				if pr.Field == tt.field {
					return
				}
			}
			t.Errorf("problems %v do not name %s", verr.Problems, tt.field)
		})
	}
}

// TestPreApprovalCoversInvitationsOnly: an open self-enrolment under a
// pre-approved policy still waits for an approver.
func TestPreApprovalCoversInvitationsOnly(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) {
		p.Approval.Mode = enrol.ApprovePreApproved
		p.Channels.Open = true
		p.AllowedDomains = []string{"example.com"}
	})
	ctx := context.Background()
	if err := f.svc.StartOpen(ctx, "staff", "walk-in@example.com"); err != nil {
		t.Fatal(err)
	}
	e, err := f.svc.Submit(ctx, f.lastLink(t, "walk-in@example.com", "/e/"), accept(nil))
	if err != nil || e.State != enrol.Submitted {
		t.Fatalf("Submit = %+v, %v; want submitted, waiting for approval", e, err)
	}
}

// gatedIssuer holds the first Issue until released, to let a test race
// other requests against an activation in progress.
type gatedIssuer struct {
	enrol.Issuer
	entered, release chan struct{}
	once             sync.Once
}

func (g *gatedIssuer) Issue(ctx context.Context, req ca.Request) (*ca.Certificate, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return g.Issuer.Issue(ctx, req)
}

// TestResendDuringActivation resends the activation link while the first
// activation is being issued, and activates again with the new link: the
// store allows one certificate per enrolment, so exactly one comes out.
func TestResendDuringActivation(t *testing.T) {
	db := testkit.MustOpenDB(t)
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	gate := &gatedIssuer{Issuer: testkit.NewEngine(t, h, db), entered: make(chan struct{}), release: make(chan struct{})}
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: gate, PublicURL: "https://certs.example.com", ServerKeyType: keys.ECDSAP256})
	ctx := context.Background()
	p := enrol.DefaultPolicy()
	p.Approval.Mode = enrol.ApproveAutomatic
	if _, err := svc.SavePolicy(ctx, "test", p); err != nil {
		t.Fatal(err)
	}
	f := &fixture{svc: svc, db: db}
	e, _ := svc.Invite(ctx, "cli", "default", enrol.Invitee{Email: "race@example.com"})
	svc.Submit(ctx, f.lastLink(t, "race@example.com", "/e/"), accept(nil))
	first := f.lastLink(t, "race@example.com", "/a/")

	done := make(chan error)
	go func() {
		_, err := svc.Activate(ctx, first, enrol.KeyServer, nil)
		done <- err
	}()
	<-gate.entered
	if err := svc.Resend(ctx, "admin", e.ID); err != nil {
		t.Fatalf("Resend: %v", err)
	}
	second := f.lastLink(t, "race@example.com", "/a/")
	_, secondErr := svc.Activate(ctx, second, enrol.KeyServer, nil)
	close(gate.release)
	firstErr := <-done
	counts, _ := db.CountCertificates(ctx)
	if counts["issued"] != 1 {
		t.Fatalf("%d certificates issued for one approval (errors: %v / %v)", counts["issued"], firstErr, secondErr)
	}
	if (firstErr == nil) == (secondErr == nil) {
		t.Errorf("activations: %v and %v; want exactly one to succeed", firstErr, secondErr)
	}
}

// TestLapsedInvitationIsReplaced: an invitation whose link lapsed unused
// does not lock its person out; a new invitation (or open request)
// replaces it.
func TestLapsedInvitationIsReplaced(t *testing.T) {
	f := newFixture(t, func(p *enrol.Policy) { p.Channels.Open = true; p.AllowedDomains = []string{"example.com"} })
	ctx := context.Background()
	// Someone else asks for a link for the victim's address, which lapses.
	if err := f.svc.StartOpen(ctx, "staff", "victim@example.com"); err != nil {
		t.Fatal(err)
	}
	stale := f.lastLink(t, "victim@example.com", "/e/")
	if _, err := f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "victim@example.com"}); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("invitation while the first link is valid = %v, want a conflict", err)
	}
	f.clock.advance(25 * time.Hour)
	e, err := f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "victim@example.com"})
	if err != nil {
		t.Fatalf("invitation after the first link lapsed: %v", err)
	}
	fresh := f.lastLink(t, "victim@example.com", "/e/")
	if fresh == stale {
		t.Fatal("no new link was sent")
	}
	if _, err := f.svc.Submit(ctx, fresh, accept(nil)); err != nil {
		t.Errorf("Submit with the new link: %v", err)
	}
	old, _ := f.svc.Enrolments(ctx, enrol.Filter{State: enrol.Expired})
	if len(old) != 1 || old[0].ID == e.ID {
		t.Errorf("expired enrolments = %+v, want the lapsed one", old)
	}
}

// dyingIssuer issues the certificate and then fails, as a process that dies
// after signing and before recording the enrolment as issued would.
type dyingIssuer struct{ enrol.Issuer }

func (d dyingIssuer) Issue(ctx context.Context, req ca.Request) (*ca.Certificate, error) {
	if _, err := d.Issuer.Issue(ctx, req); err != nil {
		return nil, err
	}
	return nil, errors.New("process died")
}

// TestActivationResumesAfterCrash: an activation that stopped between the
// signature and its record is completed by the next activation, from the
// stored certificate, without a second certificate.
func TestActivationResumesAfterCrash(t *testing.T) {
	db := testkit.MustOpenDB(t)
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	engine := testkit.NewEngine(t, h, db)
	ctx := context.Background()
	p := enrol.DefaultPolicy()
	p.Approval.Mode = enrol.ApproveAutomatic
	dying := enrol.NewService(enrol.Config{Store: db, Issuer: dyingIssuer{engine}, PublicURL: "https://certs.example.com", ServerKeyType: keys.ECDSAP256})
	if _, err := dying.SavePolicy(ctx, "test", p); err != nil {
		t.Fatal(err)
	}
	f := &fixture{svc: dying, db: db}
	e, _ := dying.Invite(ctx, "cli", "default", enrol.Invitee{Email: "phoenix@example.com"})
	dying.Submit(ctx, f.lastLink(t, "phoenix@example.com", "/e/"), accept(nil))
	if _, err := dying.Activate(ctx, f.lastLink(t, "phoenix@example.com", "/a/"), enrol.KeyServer, nil); err == nil {
		t.Fatal("the dying activation succeeded")
	}
	if got, _ := dying.Enrolment(ctx, e.ID); got.State != enrol.Approved {
		t.Fatalf("after the crash the enrolment is %s, want approved", got.State)
	}

	// A restarted server: a resend and a new activation.
	svc := enrol.NewService(enrol.Config{Store: db, Issuer: engine, PublicURL: "https://certs.example.com", ServerKeyType: keys.ECDSAP256})
	if err := svc.Resend(ctx, "admin", e.ID); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Activate(ctx, f.lastLink(t, "phoenix@example.com", "/a/"), enrol.KeyServer, nil)
	if !errors.Is(err, enrol.ErrIssuedEarlier) {
		t.Fatalf("Activate after the crash = %v, want ErrIssuedEarlier", err)
	}
	got, _ := svc.Enrolment(ctx, e.ID)
	counts, _ := db.CountCertificates(ctx)
	if got.State != enrol.Issued || got.Serial == "" || counts["issued"] != 1 {
		t.Errorf("enrolment %s serial %q with %d certificates; want issued with the one certificate", got.State, got.Serial, counts["issued"])
	}
	issued := 0
	msgs, _ := db.Messages(ctx, outbox.Filter{To: "phoenix@example.com"})
	for _, m := range msgs {
		if m.Template == "issued" {
			issued++
		}
	}
	if issued != 1 {
		t.Errorf("%d confirmation emails, want 1", issued)
	}
}

// TestReferralNonCanonicalSignature: the last character of a 32-byte
// signature carries two unused bits; a token whose only change is in them
// is refused, not accepted as the same signature.
func TestReferralNonCanonicalSignature(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	key := enrol.ReferralKey{ID: "portal", Secret: base64.RawURLEncoding.EncodeToString(secret)}
	f := newFixture(t, func(p *enrol.Policy) { p.Channels.Referral = true; p.ReferralKeys = []enrol.ReferralKey{key} })
	now := f.clock.now()
	for i := range 8 {
		tok, _ := enrol.SignReferral(enrol.Referral{Email: "x@example.com", Policy: "staff", IssuedAt: now.Unix(), Expires: now.Add(time.Hour).Unix(), ID: fmt.Sprint("n-", i)}, key)
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, tok[len(tok)-1])
		for _, d := range []int{1, 2, 3} { // the two unused low bits
			alt := tok[:len(tok)-1] + string(alphabet[(last&^3)|((last+d)&3)])
			if _, _, err := f.svc.OpenReferral(context.Background(), alt); err == nil {
				t.Fatalf("a token differing only in unused bits (%q for %q) was accepted", alt[len(alt)-1:], tok[len(tok)-1:])
			}
		}
	}
}

// TestActivationAfterAbandonedReservation: a serial reserved for an
// enrolment by a process that stopped before signing blocks its
// activation only while it may still be under way; after
// StaleReservation the activation takes it for abandoned and issues.
func TestActivationAfterAbandonedReservation(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	e, err := f.svc.Invite(ctx, "cli", "staff", enrol.Invitee{Email: "hal@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Submit(ctx, f.lastLink(t, "hal@example.com", "/e/"), accept(nil)); err != nil {
		t.Fatal(err)
	}
	// The dead process's reservation, made a minute ago.
	reservedAt := f.clock.now().Add(-time.Minute)
	f.db.SetClock(func() time.Time { return reservedAt })
	err = f.db.ReserveSerial(ctx, ca.Reservation{Serial: "7e57", IssuerID: "iss", Profile: ca.DefaultProfile, Mailbox: "hal@example.com",
		SPKIHash: []byte("a key that was never certified.."), NotBefore: reservedAt, NotAfter: reservedAt.Add(time.Hour), LintDER: []byte{1},
		Once: "enrolment:" + strconv.FormatInt(e.ID, 10)})
	f.db.SetClock(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	act := f.lastLink(t, "hal@example.com", "/a/")
	if _, err := f.svc.Activate(ctx, act, enrol.KeyServer, nil); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("activation beside a fresh reservation = %v, want conflict (being activated)", err)
	}
	if err := f.svc.Resend(ctx, "cli", e.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(enrol.StaleReservation)
	a, err := f.svc.Activate(ctx, f.lastLink(t, "hal@example.com", "/a/"), enrol.KeyServer, nil)
	if err != nil {
		t.Fatalf("activation after the reservation went stale = %v", err)
	}
	if a.Cert == nil || a.Cert.Cert.SerialNumber.Text(16) == "7e57" {
		t.Errorf("activation issued %v, want a new certificate", a.Cert)
	}
}

// TestSavePolicyOver: an edit saves only over the version it started
// from, and a new policy only under a free name.
func TestSavePolicyOver(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	p, err := f.svc.Policy(ctx, "staff")
	if err != nil {
		t.Fatal(err)
	}
	p.ValidityDays = 200
	if v, err := f.svc.SavePolicyOver(ctx, "cli", p, 1); err != nil || v != 2 {
		t.Fatalf("SavePolicyOver(base 1) = %d, %v; want version 2", v, err)
	}
	p.ValidityDays = 100
	if _, err := f.svc.SavePolicyOver(ctx, "cli", p, 1); errs.KindOf(err) != errs.Conflict {
		t.Errorf("SavePolicyOver(base 1) over version 2 = %v, want conflict", err)
	}
	if _, err := f.svc.SavePolicyOver(ctx, "cli", p, 0); errs.KindOf(err) != errs.Conflict {
		t.Errorf("SavePolicyOver(base 0) of an existing name = %v, want conflict", err)
	}
	if got, _ := f.svc.Policy(ctx, "staff"); got.Version != 2 || got.ValidityDays != 200 {
		t.Errorf("after the refused saves: version %d, validity %d; want 2, 200", got.Version, got.ValidityDays)
	}
	p.Name = "contractors"
	if v, err := f.svc.SavePolicyOver(ctx, "cli", p, 0); err != nil || v != 1 {
		t.Errorf("SavePolicyOver(base 0) of a new name = %d, %v; want version 1", v, err)
	}
}
