package enrol_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/schedule"
)

const day = 24 * time.Hour

// set moves the fixture's clock to t.
func (c *clock) set(t time.Time) { c.t.Store(t.UnixNano()) }

// countMails returns how many mails of each template are in the outbox.
func (f *fixture) countMails(t *testing.T) map[string]int {
	t.Helper()
	msgs, err := f.db.Messages(context.Background(), outbox.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range msgs {
		out[m.Template]++
	}
	return out
}

// renewalLink returns the token of the renewal link in the newest
// reminder to addr, or "" when it carries none.
func (f *fixture) renewalLink(t *testing.T, addr string) string {
	t.Helper()
	for _, m := range f.mails(t, addr) {
		if m.Template == "reminder" {
			l := m.Data["RenewalLink"]
			return l[strings.LastIndex(l, "/")+1:]
		}
	}
	t.Fatalf("no reminder mailed to %s", addr)
	return ""
}

func (f *fixture) state(t *testing.T, id int64) enrol.State {
	t.Helper()
	e, err := f.svc.Enrolment(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e.State
}

func TestExpireInvitations(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	e, err := f.svc.Invite(ctx, "admin:a", "staff", enrol.Invitee{Email: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.set(e.ExpiresAt.Add(-time.Second))
	if n, err := f.svc.ExpireInvitations(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireInvitations() before expiry = %d, %v; want 0", n, err)
	}
	f.clock.set(e.ExpiresAt)
	if n, err := f.svc.ExpireInvitations(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireInvitations() at expiry = %d, %v; want 1", n, err)
	}
	if got := f.state(t, e.ID); got != enrol.Expired {
		t.Fatalf("state = %s, want expired", got)
	}
	if n, err := f.svc.ExpireInvitations(ctx); err != nil || n != 0 {
		t.Errorf("ExpireInvitations() again = %d, %v; want 0", n, err)
	}
	// An expired invitation can be sent again, and its new link works.
	if err := f.svc.Resend(ctx, "admin:a", e.ID); err != nil {
		t.Fatalf("Resend() of an expired invitation: %v", err)
	}
	if got := f.state(t, e.ID); got != enrol.Invited {
		t.Fatalf("state after Resend = %s, want invited", got)
	}
	if _, err := f.svc.Submit(ctx, f.lastLink(t, "alice@example.com", "/e/"), accept(nil)); err != nil {
		t.Fatalf("Submit() with the resent link: %v", err)
	}
}

func TestExpireCertificates(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "alice@example.com")
	notAfter := a.Cert.Cert.NotAfter
	f.clock.set(notAfter.Add(-time.Second))
	if n, err := f.svc.ExpireCertificates(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireCertificates() before notAfter = %d, %v; want 0", n, err)
	}
	f.clock.set(notAfter.Add(time.Second))
	if n, err := f.svc.ExpireCertificates(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireCertificates() after notAfter = %d, %v; want 1", n, err)
	}
	if got := f.state(t, a.Enrolment.ID); got != enrol.Expired {
		t.Errorf("state = %s, want expired", got)
	}
	// The person may now be invited again.
	if _, err := f.svc.Invite(ctx, "admin:a", "staff", enrol.Invitee{Email: "alice@example.com"}); err != nil {
		t.Errorf("Invite() after expiry: %v", err)
	}
}

// TestRemindersOnce runs the reminder job often, and from two runners at
// once, across the thresholds: each threshold sends exactly one reminder.
func TestRemindersOnce(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "alice@example.com")
	f.activated(t, "bob@example.com")
	notAfter := a.Cert.Cert.NotAfter
	days := []int{30, 7, 1}
	jobs := f.svc.LifecycleJobs(enrol.LifecycleConfig{ReminderDays: days, DigestTo: []string{"pki@example.com"}, Every: time.Hour})
	runners := make([]*schedule.Runner, 2)
	for i := range runners {
		r, err := schedule.NewRunner(schedule.Config{Store: f.db, Jobs: jobs, Now: f.clock.now})
		if err != nil {
			t.Fatal(err)
		}
		runners[i] = r
	}
	runAll := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, r := range runners {
			wg.Go(func() {
				if _, err := r.RunDue(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		// And the job itself, twice at once, outside the lease.
		for range 2 {
			wg.Go(func() {
				if _, err := f.svc.SendReminders(ctx, days); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	steps := []struct {
		at        time.Time
		reminders int // in total, for two certificates
	}{
		{notAfter.Add(-31 * day), 0},
		{notAfter.Add(-30*day + time.Hour), 2},
		{notAfter.Add(-29 * day), 2},
		{notAfter.Add(-7*day + time.Minute), 4},
		{notAfter.Add(-3 * day), 4},
		{notAfter.Add(-day + time.Minute), 6},
		{notAfter.Add(-time.Hour), 6},
	}
	for _, s := range steps {
		f.clock.set(s.at)
		for range 3 {
			runAll()
			f.clock.set(f.clock.now().Add(2 * time.Hour)) // past the job interval
		}
		if got := f.countMails(t)["reminder"]; got != s.reminders {
			t.Fatalf("at notAfter%+v: %d reminders, want %d", s.at.Sub(notAfter), got, s.reminders)
		}
	}
	if got := f.countMails(t)["digest"]; got < 1 || got > 8 {
		t.Errorf("%d digests over 31 days, want one a day at most", got)
	}
}

// TestDigest sends one digest per recipient listing what expires soon.
func TestDigest(t *testing.T) {
	f := newFixture(t, preApproved)
	ctx := context.Background()
	a := f.activated(t, "alice@example.com")
	f.clock.set(a.Cert.Cert.NotAfter.Add(-10 * day))
	n, err := f.svc.SendDigest(ctx, 30, []string{"pki@example.com", "ra@example.com"})
	if err != nil || n != 1 {
		t.Fatalf("SendDigest() = %d, %v; want 1", n, err)
	}
	for _, to := range []string{"pki@example.com", "ra@example.com"} {
		ms := f.mails(t, to)
		if len(ms) == 0 || ms[0].Template != "digest" || !strings.Contains(ms[0].Data["Certificates"], "alice@example.com") {
			t.Errorf("digest to %s missing or without alice: %+v", to, ms)
		}
	}
	if n, err := f.svc.SendDigest(ctx, 30, nil); err != nil || n != 0 {
		t.Errorf("SendDigest(no recipients) = %d, %v; want 0", n, err)
	}
}

// TestRenewal follows a renewal from the reminder to the new certificate,
// with the approval the policy asks for, the old certificate staying
// valid; and with automatic approval and revoke_on_renewal, the old one
// revoked as superseded.
func TestRenewal(t *testing.T) {
	for _, tt := range []struct {
		name       string
		edit       func(p *enrol.Policy)
		wantRevoke bool
	}{
		{"manual", func(p *enrol.Policy) {}, false},
		{"automatic, revoke on renewal", func(p *enrol.Policy) {
			p.Renewal.Approval, p.RevokeOnRenewal = enrol.RenewAutomatic, true
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.edit)
			ctx := context.Background()
			addr := "alice@example.com"
			e, err := f.svc.Invite(ctx, "admin:a", "staff", enrol.Invitee{Email: addr, GivenName: "Alice", Surname: "Liddell"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Submit(ctx, f.lastLink(t, addr, "/e/"), accept(nil)); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Approve(ctx, "admin:b", e.ID); err != nil {
				t.Fatal(err)
			}
			old, err := f.svc.Activate(ctx, f.lastLink(t, addr, "/a/"), enrol.KeyServer, nil)
			if err != nil {
				t.Fatal(err)
			}
			oldSerial := ca.SerialHex(old.Cert.Cert.SerialNumber)

			// 30 days before: the reminder carries a renewal link.
			f.clock.set(old.Cert.Cert.NotAfter.Add(-30*day + time.Hour))
			if n, err := f.svc.SendReminders(ctx, []int{30, 7}); err != nil || n != 1 {
				t.Fatalf("SendReminders() = %d, %v; want 1", n, err)
			}
			first := f.renewalLink(t, addr)
			// 7 days before, the renewal still unused: a new link replaces it.
			f.clock.set(old.Cert.Cert.NotAfter.Add(-7*day + time.Hour))
			if n, err := f.svc.SendReminders(ctx, []int{30, 7}); err != nil || n != 1 {
				t.Fatalf("SendReminders() at 7 days = %d, %v; want 1", n, err)
			}
			token := f.renewalLink(t, addr)
			if token == first || token == "" {
				t.Fatalf("second reminder reuses the first renewal link")
			}
			if _, _, err := f.svc.OpenLink(ctx, first, enrol.PurposeInvitation); err == nil {
				t.Errorf("the first renewal link still works")
			}
			renewal, p, err := f.svc.OpenLink(ctx, token, enrol.PurposeInvitation)
			if err != nil {
				t.Fatalf("OpenLink(renewal) = %v", err)
			}
			if renewal.Channel != enrol.ViaRenewal || renewal.RenewalOf != oldSerial || renewal.GivenName != "Alice" || renewal.Surname != "Liddell" {
				t.Errorf("renewal = %+v, want channel renewal of %s prefilled from the old enrolment", renewal, oldSerial)
			}
			sub, err := f.svc.Submit(ctx, token, accept(p))
			if err != nil {
				t.Fatal(err)
			}
			if p.Renewal.Approval == enrol.RenewAutomatic {
				if sub.State != enrol.Approved {
					t.Fatalf("renewal state = %s, want approved automatically", sub.State)
				}
			} else {
				if sub.State != enrol.Submitted {
					t.Fatalf("renewal state = %s, want submitted for approval", sub.State)
				}
				if _, err := f.svc.Approve(ctx, "admin:b", sub.ID); err != nil {
					t.Fatal(err)
				}
			}
			act, err := f.svc.Activate(ctx, f.lastLink(t, addr, "/a/"), enrol.KeyServer, nil)
			if err != nil {
				t.Fatalf("Activate(renewal) = %v", err)
			}
			if act.Cert.Cert.SerialNumber.Cmp(old.Cert.Cert.SerialNumber) == 0 {
				t.Fatal("renewal issued the old serial")
			}
			st, err := f.db.CertificateStatus(ctx, oldSerial)
			if err != nil {
				t.Fatal(err)
			}
			if revoked := !st.RevokedAt.IsZero(); revoked != tt.wantRevoke {
				t.Errorf("old certificate revoked = %v, want %v", revoked, tt.wantRevoke)
			}
			if tt.wantRevoke && st.Reason != ca.ReasonSuperseded {
				t.Errorf("old certificate revoked for %v, want superseded", st.Reason)
			}
			wantOld := enrol.Issued
			if tt.wantRevoke {
				wantOld = enrol.Revoked
			}
			if got := f.state(t, e.ID); got != wantOld {
				t.Errorf("old enrolment is %s, want %s", got, wantOld)
			}
			// A renewed certificate is not reminded again. (The test's CA
			// runs on the real clock, so the renewal expires about when the
			// old one does, and is reminded itself.)
			f.clock.set(old.Cert.Cert.NotAfter.Add(-day + time.Hour))
			if _, err := f.svc.SendReminders(ctx, []int{30, 7, 1}); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, m := range f.mails(t, addr) {
				if m.Template == "reminder" && m.Data["Serial"] == oldSerial {
					n++
				}
			}
			if n != 2 {
				t.Errorf("%d reminders for the renewed certificate, want the 2 before renewal", n)
			}
		})
	}
}
