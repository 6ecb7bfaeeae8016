package auth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
)

// gatedStore is a store that lets a test hold logins at two points: after
// reading an account's credentials, and after each committed transaction.
type gatedStore struct {
	auth.Store
	afterRead func(email string)
	afterTx   func()
}

func (g *gatedStore) AuthCredentials(ctx context.Context, email string) (*auth.Credentials, error) {
	c, err := g.Store.AuthCredentials(ctx, email)
	if g.afterRead != nil {
		g.afterRead(email)
	}
	return c, err
}

func (g *gatedStore) AuthTx(ctx context.Context, fn func(auth.Tx) error) error {
	err := g.Store.AuthTx(ctx, fn)
	if g.afterTx != nil {
		g.afterTx()
	}
	return err
}

// countFailures returns how many failed logins of email the audit log
// gives each reason.
func (e *env) countFailures(tb testing.TB, email string) map[string]int {
	tb.Helper()
	out := map[string]int{}
	err := e.db.AuditEvents(e.ctx, func(r audit.Record) error {
		if r.Action == "account.login-failed" && r.Object == "account:"+email {
			reason, _, _ := strings.Cut(r.Detail, ",")
			out[reason]++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestLockoutHoldsAgainstConcurrentGuesses sends 20 wrong passwords at
// once, each from its own address, all of which read the account while it
// was unlocked: only MaxFailures of them may be checked, and the account
// is locked after.
func TestLockoutHoldsAgainstConcurrentGuesses(t *testing.T) {
	e := mustOpenWith(t, auth.Config{MaxHashing: 100})
	u := e.join(t, "ann@example.org", auth.Auditor)
	const n = 20
	var read sync.WaitGroup
	read.Add(n)
	gs := &gatedStore{Store: e.db, afterRead: func(string) {
		read.Done()
		read.Wait() // every attempt has seen the account unlocked
	}}
	s, err := auth.New(auth.Config{Store: gs, Now: e.clk.Now, MaxHashing: 100})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := s.Login(e.ctx, u.Email, "a wrong password", "000000", fmt.Sprintf("198.51.100.%d", i+1)); !errors.Is(err, auth.ErrLoginFailed) {
				t.Errorf("Login = %v, want ErrLoginFailed", err)
			}
		}()
	}
	wg.Wait()
	got := e.countFailures(t, u.Email)
	if got["wrong password"] > 5 || got["wrong password"]+got["account locked"] != n {
		t.Errorf("failed logins by reason = %v; want at most 5 passwords checked of %d", got, n)
	}
	e.clk.Add(30 * time.Second)
	if _, _, err := e.Login(e.ctx, u.Email, u.password, e.code(t, u.secret), "198.51.100.200"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("right password after the burst = %v, want ErrLoginFailed (locked)", err)
	}
}

// TestLockoutCountsAttemptsInFlight: a right password sent while
// MaxFailures wrong ones are still being checked fails, though none of
// them has finished.
func TestLockoutCountsAttemptsInFlight(t *testing.T) {
	e := mustOpen(t)
	u := e.join(t, "ann@example.org", auth.Auditor)
	const wrong = 5
	var committed atomic.Int32
	reserved := make(chan struct{})
	release := make(chan struct{})
	gs := &gatedStore{Store: e.db}
	gs.afterTx = func() {
		if committed.Add(1) == wrong {
			close(reserved)
		}
		if committed.Load() <= wrong {
			<-release // the wrong attempts wait here, in flight
		}
	}
	s, err := auth.New(auth.Config{Store: gs, Now: e.clk.Now, MaxHashing: 100})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(30 * time.Second)
	var wg sync.WaitGroup
	for i := range wrong {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Login(e.ctx, u.Email, "a wrong password", "000000", fmt.Sprintf("198.51.100.%d", i+1))
		}()
	}
	<-reserved
	_, _, err = s.Login(e.ctx, u.Email, u.password, e.code(t, u.secret), "198.51.100.99")
	close(release)
	wg.Wait()
	if !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("right password with %d wrong ones in flight = %v, want ErrLoginFailed", wrong, err)
	}
}

// TestHashingIsBounded: with MaxHashing checks running, another login is
// throttled before any work.
func TestHashingIsBounded(t *testing.T) {
	e := mustOpen(t)
	entered, release := make(chan struct{}), make(chan struct{})
	gs := &gatedStore{Store: e.db, afterRead: func(email string) {
		if email == "slow@example.org" {
			close(entered)
			<-release
		}
	}}
	s, err := auth.New(auth.Config{Store: gs, Now: e.clk.Now, MaxHashing: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, _, err := s.Login(e.ctx, "slow@example.org", "some password", "000000", "192.0.2.1")
		done <- err
	}()
	<-entered
	if _, _, err := s.Login(e.ctx, "other@example.org", "some password", "000000", "192.0.2.2"); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("Login while the one hashing slot is busy = %v, want ErrThrottled", err)
	}
	close(release)
	if err := <-done; !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("the slow login = %v, want ErrLoginFailed", err)
	}
	if _, _, err := s.Login(e.ctx, "other@example.org", "some password", "000000", "192.0.2.2"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("Login once the slot is free = %v, want ErrLoginFailed", err)
	}
}

// TestThrottleIsBounded: the throttle remembers at most 10,000 addresses,
// forgetting the least recently seen, and stays exact for those it keeps.
func TestThrottleIsBounded(t *testing.T) {
	e := mustOpen(t)
	now := e.clk.Now()
	for range 10 {
		e.ThrottleAllow("203.0.113.1", now)
	}
	if e.ThrottleAllow("203.0.113.1", now) {
		t.Fatal("the 11th attempt at once was allowed")
	}
	for i := range 20000 {
		e.ThrottleAllow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
		if i == 5000 && e.ThrottleAllow("203.0.113.1", now) {
			t.Fatal("a recently seen, spent address was forgotten")
		}
	}
	if n := e.ThrottleSize(); n > 10000 {
		t.Errorf("the throttle remembers %d addresses, want at most 10000", n)
	}
	if !e.ThrottleAllow("203.0.113.1", now) {
		t.Errorf("an address not seen for 15,000 others is still remembered")
	}
}

// TestOfficerScopeIsExplicit: an officer has named policies or all of
// them; one with none may act under none, and Invite and SetRole refuse
// to make one.
func TestOfficerScopeIsExplicit(t *testing.T) {
	tests := []struct {
		name     string
		role     auth.Role
		policies []string
		staff    bool
		limited  bool
	}{
		{"officer of all", auth.Officer, []string{auth.AllPolicies}, true, false},
		{"officer of staff", auth.Officer, []string{"staff"}, true, true},
		{"officer of guests", auth.Officer, []string{"guests"}, false, true},
		{"officer of none", auth.Officer, nil, false, true},
		{"administrator", auth.Administrator, nil, true, false},
		{"auditor", auth.Auditor, nil, true, false},
	}
	for _, tt := range tests {
		p := &auth.Principal{Account: auth.Account{Role: tt.role, Policies: tt.policies}}
		if got := p.CanPolicy("staff"); got != tt.staff {
			t.Errorf("%s: CanPolicy(staff) = %v, want %v", tt.name, got, tt.staff)
		}
		if _, limited := p.Scope(); limited != tt.limited {
			t.Errorf("%s: Scope limited = %v, want %v", tt.name, limited, tt.limited)
		}
	}
	var none *auth.Principal
	if none.CanPolicy("staff") {
		t.Error("nil principal: CanPolicy = true")
	}

	e := mustOpen(t)
	if _, err := e.InviteAccount(e.ctx, "cli", "olga@example.org", auth.Officer, nil); kind(err) != errs.Invalid {
		t.Errorf("InviteAccount(officer, no policies) = %v, want invalid", err)
	}
	u := e.join(t, "ann@example.org", auth.Auditor)
	if err := e.SetRole(e.ctx, "cli", u.ID, auth.Officer, []string{}); kind(err) != errs.Invalid {
		t.Errorf("SetRole(officer, no policies) = %v, want invalid", err)
	}
	if err := e.SetRole(e.ctx, "cli", u.ID, auth.Officer, []string{"staff", auth.AllPolicies}); err != nil {
		t.Fatal(err)
	}
	if a, _ := e.Account(e.ctx, u.ID); len(a.Policies) != 1 || a.Policies[0] != auth.AllPolicies {
		t.Errorf("policies after SetRole(staff, all) = %q, want all", a.Policies)
	}
}

// TestUnlockAndInvitations covers Unlock and the invitation list and
// cancellation, and that an administrator's invitations die with its
// removal or demotion.
func TestUnlockAndInvitations(t *testing.T) {
	e := mustOpen(t)
	setup, err := e.SetupLink(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	root := e.joinWith(t, setup, "root@example.org")
	admin := e.join(t, "adam@example.org", auth.Administrator)
	u := e.join(t, "ann@example.org", auth.Auditor)
	for i := range 5 {
		e.Login(e.ctx, u.Email, "a wrong password", "000000", fmt.Sprintf("192.0.2.%d", i+1))
	}
	if a, _ := e.Account(e.ctx, u.ID); !e.clk.Now().Before(a.LockedUntil) {
		t.Fatalf("account after 5 failures not locked: %+v", a)
	}
	if err := e.Unlock(e.ctx, "console:root@example.org", u.ID); err != nil {
		t.Fatal(err)
	}
	e.login(t, u)

	byAdam, err := e.InviteAccount(e.ctx, "console:adam@example.org", "bea@example.org", auth.Auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	byRoot, err := e.InviteAccount(e.ctx, "console:root@example.org", "cy@example.org", auth.Officer, []string{"staff"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := e.Invitations(e.ctx)
	if err != nil || len(inv) != 2 || inv[0].Email != "bea@example.org" || inv[0].CreatedBy != "console:adam@example.org" {
		t.Fatalf("Invitations = %+v, %v; want bea's by adam and cy's", inv, err)
	}
	if err := e.SetRole(e.ctx, "console:root@example.org", admin.ID, auth.Auditor, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.OpenJoin(e.ctx, byAdam); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(invitation of a demoted administrator) = %v, want ErrBadLink", err)
	}
	if _, err := e.CancelInvitation(e.ctx, "cli", inv[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.OpenJoin(e.ctx, byRoot); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(cancelled) = %v, want ErrBadLink", err)
	}
	if err := e.CancelInvitationsOf(e.ctx, "cli", "cy@example.org"); kind(err) != errs.NotFound {
		t.Errorf("CancelInvitationsOf(none left) = %v, want not found", err)
	}
	_ = root
	actions := map[string]int{}
	e.db.AuditEvents(e.ctx, func(r audit.Record) error { actions[r.Action]++; return nil })
	if actions["account.unlock"] != 1 || actions["account.invite-cancel"] != 1 {
		t.Errorf("audit actions = %v; want one account.unlock and one account.invite-cancel", actions)
	}
}

// TestJoinFormServedByAnotherNode: the join form's sealed TOTP secret is
// checked by any Service on the same database, as when a load balancer
// sends the form and its submission to different nodes, or mailca
// restarts in between.
func TestJoinFormServedByAnotherNode(t *testing.T) {
	e := mustOpen(t)
	other, err := auth.New(auth.Config{Store: e.db, Now: e.clk.Now, Issuer: "mailca test"})
	if err != nil {
		t.Fatal(err)
	}
	token, err := e.SetupLink(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, err := e.NewTOTPKey(token, "ann@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Join(e.ctx, token, "ann@example.org", "Ann Example", "correct horse battery staple", key.Sealed, e.code(t, key.Secret), "192.0.2.9"); err != nil {
		t.Errorf("Join on another Service of the database = %v", err)
	}
}
