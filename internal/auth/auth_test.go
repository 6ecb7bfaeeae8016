package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// clock is a fake clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	*auth.Service
	db  *sqlite.DB
	clk *clock
	ctx context.Context
}

// mustOpen returns a Service on a new SQLite database in a temporary
// directory, with a fake clock shared by both.
func mustOpen(tb testing.TB) *env { return mustOpenWith(tb, auth.Config{}) }

// mustOpenWith is mustOpen with settings of cfg other than Store and Now.
func mustOpenWith(tb testing.TB, cfg auth.Config) *env {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "mailca.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	db.SetClock(clk.Now)
	cfg.Store, cfg.Now, cfg.Issuer = db, clk.Now, "mailca test"
	s, err := auth.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &env{Service: s, db: db, clk: clk, ctx: ctx}
}

// code returns the current TOTP code of secret.
func (e *env) code(tb testing.TB, secret string) string {
	tb.Helper()
	c, err := totp.GenerateCode(secret, e.clk.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// user is an account made by a test, with its secrets.
type user struct {
	*auth.Account
	password, secret string
}

// join invites email with role as "cli" and joins, returning the account.
// The clock moves on a TOTP period, so that a code for login is fresh.
func (e *env) join(tb testing.TB, email string, role auth.Role, policies ...string) *user {
	tb.Helper()
	if role == auth.Officer && len(policies) == 0 {
		policies = []string{auth.AllPolicies}
	}
	token, err := e.InviteAccount(e.ctx, "cli", email, role, policies)
	if err != nil {
		tb.Fatalf("InviteAccount(%s) = %v", email, err)
	}
	return e.joinWith(tb, token, email)
}

func (e *env) joinWith(tb testing.TB, token, email string) *user {
	tb.Helper()
	key, err := e.NewTOTPKey(token, email)
	if err != nil {
		tb.Fatal(err)
	}
	password := "correct horse battery " + email[:2]
	a, err := e.Join(e.ctx, token, email, "Ann Example", password, key.Sealed, e.code(tb, key.Secret), "192.0.2.9")
	if err != nil {
		tb.Fatalf("Join(%s) = %v", email, err)
	}
	e.clk.Add(30 * time.Second)
	return &user{Account: a, password: password, secret: key.Secret}
}

// login logs u in with a fresh code from its own address, moving the clock
// on a TOTP period first so that no code is reused.
func (e *env) login(tb testing.TB, u *user) (string, *auth.Principal) {
	tb.Helper()
	e.clk.Add(30 * time.Second)
	token, p, err := e.Login(e.ctx, u.Email, u.password, e.code(tb, u.secret), "198.51.100.1")
	if err != nil {
		tb.Fatalf("Login(%s) = %v", u.Email, err)
	}
	return token, p
}

func kind(err error) errs.Kind { return errs.KindOf(err) }

func TestSetupLinkOnlyWhileEmpty(t *testing.T) {
	e := mustOpen(t)
	if empty, err := e.NeedsSetup(e.ctx); err != nil || !empty {
		t.Fatalf("NeedsSetup on an empty database = %v, %v; want true", empty, err)
	}
	first, err := e.SetupLink(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.SetupLink(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.OpenJoin(e.ctx, first); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(replaced setup token) = %v, want ErrBadLink", err)
	}
	j, err := e.OpenJoin(e.ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if !j.Setup || j.Role != auth.Administrator || j.Email != "" || !j.Expires.Equal(e.clk.Now().Add(24*time.Hour)) {
		t.Errorf("OpenJoin(setup token) = %+v, want a setup token for an administrator valid 24 hours", j)
	}

	// The same setup token, opened meanwhile by an invitation's joiner,
	// is dead once any account exists.
	invite, err := e.InviteAccount(e.ctx, "cli", "oli@example.org", auth.Officer, []string{auth.AllPolicies})
	if err != nil {
		t.Fatal(err)
	}
	e.joinWith(t, invite, "oli@example.org")
	if _, err := e.OpenJoin(e.ctx, second); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(setup token) with an account = %v, want ErrBadLink", err)
	}
	if empty, err := e.NeedsSetup(e.ctx); err != nil || empty {
		t.Errorf("NeedsSetup with an account = %v, %v; want false", empty, err)
	}
	if _, err := e.SetupLink(e.ctx); kind(err) != errs.Conflict {
		t.Errorf("SetupLink with an account = %v, want a conflict", err)
	}
}

func TestSetupMakesAnAdministrator(t *testing.T) {
	e := mustOpen(t)
	token, err := e.SetupLink(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	u := e.joinWith(t, token, "Root@Example.org ")
	if u.Email != "root@example.org" || u.Role != auth.Administrator {
		t.Errorf("first account = %s %s, want root@example.org administrator", u.Email, u.Role)
	}
	if _, err := e.OpenJoin(e.ctx, token); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(spent setup token) = %v, want ErrBadLink", err)
	}
	_, p := e.login(t, u)
	if !p.Can(auth.ManageAccounts) {
		t.Errorf("the first administrator cannot manage accounts")
	}
}

func TestJoinRefusesBadInputWithoutSpendingToken(t *testing.T) {
	e := mustOpen(t)
	const email = "ann.lee@example.org"
	token, err := e.InviteAccount(e.ctx, "cli", email, auth.Officer, []string{"staff"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := e.NewTOTPKey(token, email)
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.InviteAccount(e.ctx, "cli", "bob@example.org", auth.Auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := e.NewTOTPKey(other, "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(key.QR)); err != nil || img.Bounds().Dx() != 200 {
		t.Errorf("QR is not a 200x200 PNG: %v", err)
	}
	if !strings.HasPrefix(key.URL, "otpauth://totp/") || !strings.Contains(key.URL, "issuer=mailca") {
		t.Errorf("URL = %q, want an otpauth://totp/ URL with the issuer", key.URL)
	}
	good := e.code(t, key.Secret)
	wrong := fmt.Sprintf("%06d", (atoi(good)+1)%1000000)
	tests := []struct {
		name                           string
		userName, password, secret, cd string
	}{
		{"short password", "Ann", "elevenchars", key.Sealed, good},
		{"password holds the local part", "Ann", "my ann.lee password", key.Sealed, good},
		{"password holds the local part, other case", "Ann", "my ANN.LEE password", key.Sealed, good},
		{"password too long", "Ann", strings.Repeat("x", 257), key.Sealed, good},
		{"no name", " ", "a long enough password", key.Sealed, good},
		{"wrong code", "Ann", "a long enough password", key.Sealed, wrong},
		{"no code", "Ann", "a long enough password", key.Sealed, ""},
		{"bad secret", "Ann", "a long enough password", "not base32!", good},
		// A secret the person chose (and someone else may know) is refused,
		// with or without a made-up seal, as is one sealed for another link.
		{"chosen secret", "Ann", "a long enough password", key.Secret, good},
		{"chosen secret, forged seal", "Ann", "a long enough password", key.Secret + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", good},
		{"secret of another link", "Ann", "a long enough password", otherKey.Sealed, e.code(t, otherKey.Secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Join(e.ctx, token, email, tt.userName, tt.password, tt.secret, tt.cd, "192.0.2.9")
			if kind(err) != errs.Invalid {
				t.Errorf("Join = %v, want an invalid-input error", err)
			}
			if _, err := e.OpenJoin(e.ctx, token); err != nil {
				t.Errorf("after a refused Join, OpenJoin = %v: the token was spent", err)
			}
		})
	}
	a, err := e.Join(e.ctx, token, "other@example.org", "Ann Lee", "a long enough password", key.Sealed, good, "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if a.Email != email || a.Role != auth.Officer || len(a.Policies) != 1 || a.Policies[0] != "staff" {
		t.Errorf("Join = %+v, want the invited email, role and policies", a)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestJoinTokenSingleUseAndExpiry(t *testing.T) {
	e := mustOpen(t)
	token, err := e.InviteAccount(e.ctx, "cli", "ann@example.org", auth.Auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.joinWith(t, token, "ann@example.org")
	key, _ := e.NewTOTPKey(token, "ann@example.org")
	if _, err := e.Join(e.ctx, token, "", "Ann", "another long password", key.Sealed, e.code(t, key.Secret), ""); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("Join(used token) = %v, want ErrBadLink", err)
	}
	if _, err := e.InviteAccount(e.ctx, "cli", "ann@example.org", auth.Auditor, nil); kind(err) != errs.Conflict {
		t.Errorf("InviteAccount(existing account) = %v, want a conflict", err)
	}

	late, err := e.InviteAccount(e.ctx, "cli", "bob@example.org", auth.Auditor, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(24*time.Hour - time.Second)
	if _, err := e.OpenJoin(e.ctx, late); err != nil {
		t.Errorf("OpenJoin a second before expiry = %v", err)
	}
	e.clk.Add(time.Second)
	if _, err := e.OpenJoin(e.ctx, late); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(expired) = %v, want ErrBadLink", err)
	}
	key, _ = e.NewTOTPKey(late, "bob@example.org")
	if _, err := e.Join(e.ctx, late, "", "Bob", "another long password", key.Sealed, e.code(t, key.Secret), ""); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("Join(expired) = %v, want ErrBadLink", err)
	}

	// A new invitation replaces the unused one.
	first, _ := e.InviteAccount(e.ctx, "cli", "cy@example.org", auth.Auditor, nil)
	second, _ := e.InviteAccount(e.ctx, "cli", "cy@example.org", auth.Auditor, nil)
	if _, err := e.OpenJoin(e.ctx, first); !errors.Is(err, auth.ErrBadLink) {
		t.Errorf("OpenJoin(replaced invitation) = %v, want ErrBadLink", err)
	}
	if _, err := e.OpenJoin(e.ctx, second); err != nil {
		t.Errorf("OpenJoin(new invitation) = %v", err)
	}

	for _, bad := range []string{"", "x", second + "A", second[:42] + "=", strings.Repeat("A", 43), second[:42] + "+"} {
		if _, err := e.OpenJoin(e.ctx, bad); !errors.Is(err, auth.ErrBadLink) {
			t.Errorf("OpenJoin(%q) = %v, want ErrBadLink", bad, err)
		}
	}
}

func TestInviteRefusesBadInput(t *testing.T) {
	e := mustOpen(t)
	tests := []struct {
		email string
		role  auth.Role
	}{
		{"not an address", auth.Officer},
		{"Ann <ann@example.org>", auth.Officer},
		{"ann@example.org", "root"},
		{"", auth.Auditor},
	}
	for _, tt := range tests {
		if _, err := e.InviteAccount(e.ctx, "cli", tt.email, tt.role, nil); kind(err) != errs.Invalid {
			t.Errorf("InviteAccount(%q, %q) = %v, want an invalid-input error", tt.email, tt.role, err)
		}
	}
}

func TestLogin(t *testing.T) {
	e := mustOpenWith(t, auth.Config{MaxFailures: 100}) // the lockout has its own test
	u := e.join(t, "ann@example.org", auth.Officer, "staff")

	// The code entered at join cannot log in: its time step is spent.
	e.clk.Add(-30 * time.Second)
	if _, _, err := e.Login(e.ctx, u.Email, u.password, e.code(t, u.secret), "192.0.2.1"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("Login with the code used at join = %v, want ErrLoginFailed", err)
	}
	e.clk.Add(30 * time.Second)

	token, p := e.login(t, u)
	if p.Email != u.Email || p.Role != auth.Officer || p.SessionID == 0 || !p.LastLogin.Equal(e.clk.Now()) {
		t.Errorf("Login principal = %+v", p)
	}
	if len(token) != 43 {
		t.Errorf("session token %q is not 32 bytes of base64url", token)
	}
	if got, err := e.Session(e.ctx, token); err != nil || got.ID != u.ID || got.SessionID != p.SessionID {
		t.Errorf("Session(new token) = %+v, %v", got, err)
	}
	// Replay: the same code again, in the same period and in the next
	// (still within the skew).
	used := e.code(t, u.secret)
	if _, _, err := e.Login(e.ctx, u.Email, u.password, used, "192.0.2.2"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("Login with a replayed code = %v, want ErrLoginFailed", err)
	}
	e.clk.Add(30 * time.Second)
	if _, _, err := e.Login(e.ctx, u.Email, u.password, used, "192.0.2.2"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("Login with a code replayed in the next period = %v, want ErrLoginFailed", err)
	}

	e.clk.Add(30 * time.Second)
	fresh := e.code(t, u.secret)
	wrongCode := fmt.Sprintf("%06d", (atoi(fresh)+1)%1000000)
	tests := []struct {
		name, email, password, code string
	}{
		{"wrong password", u.Email, u.password + "x", fresh},
		{"wrong code", u.Email, u.password, wrongCode},
		{"no code", u.Email, u.password, ""},
		{"unknown account", "nobody@example.org", u.password, fresh},
		{"password in the email field", u.password, u.password, fresh},
		{"password of a megabyte", u.Email, strings.Repeat(u.password, 1<<16), fresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, p, err := e.Login(e.ctx, tt.email, tt.password, tt.code, "192.0.2.3")
			if !errors.Is(err, auth.ErrLoginFailed) || token != "" || p != nil {
				t.Errorf("Login = %q, %v, %v; want ErrLoginFailed", token, p, err)
			}
			if err.Error() != auth.ErrLoginFailed.Error() {
				t.Errorf("Login error %q differs from ErrLoginFailed's", err)
			}
		})
	}
	// The right code still works after those failures, and the email is
	// case-insensitive.
	if _, _, err := e.Login(e.ctx, " ANN@example.org", u.password, fresh, "192.0.2.3"); err != nil {
		t.Errorf("Login after failures = %v", err)
	}
}

func TestLockout(t *testing.T) {
	e := mustOpen(t)
	u := e.join(t, "ann@example.org", auth.Auditor)
	fail := func() {
		t.Helper()
		if _, _, err := e.Login(e.ctx, u.Email, "wrong password!", e.code(t, u.secret), "192.0.2.1"); !errors.Is(err, auth.ErrLoginFailed) {
			t.Fatalf("Login with a wrong password = %v", err)
		}
	}
	tryGood := func() error {
		e.clk.Add(30 * time.Second)
		_, _, err := e.Login(e.ctx, u.Email, u.password, e.code(t, u.secret), "192.0.2.2")
		return err
	}

	// Four failures, then the window passes: they no longer count.
	for range 4 {
		fail()
	}
	e.clk.Add(15*time.Minute + time.Second)
	for range 4 {
		fail()
	}
	if err := tryGood(); err != nil {
		t.Fatalf("Login after 4 failures within the window = %v, want success", err)
	}
	// A success clears the count: four more do not lock either.
	for range 4 {
		fail()
	}
	if err := tryGood(); err != nil {
		t.Fatalf("Login after a success and 4 failures = %v, want success", err)
	}
	// Five within the window lock the account, even against the right
	// password and code.
	for range 5 {
		fail()
	}
	if err := tryGood(); !errors.Is(err, auth.ErrLoginFailed) {
		t.Fatalf("Login while locked = %v, want ErrLoginFailed", err)
	}
	// The lockout holds across a restart: a new Service on the same
	// database refuses too.
	s2, err := auth.New(auth.Config{Store: e.db, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(30 * time.Second)
	if _, _, err := s2.Login(e.ctx, u.Email, u.password, e.code(t, u.secret), "192.0.2.4"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("Login while locked, other Service = %v, want ErrLoginFailed", err)
	}
	// Released after the lockout (15 minutes from the fifth failure).
	e.clk.Add(15 * time.Minute)
	if err := tryGood(); err != nil {
		t.Errorf("Login after the lockout = %v, want success", err)
	}
	var locks int
	e.db.AuditEvents(e.ctx, func(r audit.Record) error {
		if r.Action == "account.lockout" && r.Object == "account:"+u.Email {
			locks++
		}
		return nil
	})
	if locks != 1 {
		t.Errorf("%d account.lockout events, want 1", locks)
	}
}

func TestThrottlePerAddress(t *testing.T) {
	e := mustOpen(t)
	attempt := func(from string) error {
		_, _, err := e.Login(e.ctx, "nobody@example.org", "some password", "123456", from)
		return err
	}
	for i := range 10 {
		if err := attempt("203.0.113.5:4000"); !errors.Is(err, auth.ErrLoginFailed) {
			t.Fatalf("attempt %d = %v, want ErrLoginFailed", i+1, err)
		}
	}
	if err := attempt("203.0.113.5:4001"); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("attempt 11 from the same address = %v, want ErrThrottled", err)
	}
	if err := attempt("203.0.113.6"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("attempt from another address = %v, want ErrLoginFailed", err)
	}
	e.clk.Add(20 * time.Second)
	if err := attempt("203.0.113.5"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("attempt after 20 seconds = %v, want ErrLoginFailed", err)
	}
	if err := attempt("203.0.113.5"); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("second attempt after 20 seconds = %v, want ErrThrottled", err)
	}

	// One IPv6 /64 is one client.
	for i := range 10 {
		if err := attempt(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)); !errors.Is(err, auth.ErrLoginFailed) {
			t.Fatalf("IPv6 attempt %d = %v, want ErrLoginFailed", i+1, err)
		}
	}
	if err := attempt("2001:db8:1:2:ffff::1"); !errors.Is(err, auth.ErrThrottled) {
		t.Errorf("attempt from the same /64 = %v, want ErrThrottled", err)
	}
	if err := attempt("2001:db8:1:3::1"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("attempt from another /64 = %v, want ErrLoginFailed", err)
	}
}

func TestSessionTimeouts(t *testing.T) {
	e := mustOpen(t)
	u := e.join(t, "ann@example.org", auth.Auditor)

	t.Run("idle", func(t *testing.T) {
		token, _ := e.login(t, u)
		for range 3 {
			e.clk.Add(29 * time.Minute)
			if _, err := e.Session(e.ctx, token); err != nil {
				t.Fatalf("Session after 29 idle minutes = %v", err)
			}
		}
		e.clk.Add(30 * time.Minute)
		if _, err := e.Session(e.ctx, token); !errors.Is(err, auth.ErrNoSession) {
			t.Errorf("Session after 30 idle minutes = %v, want ErrNoSession", err)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		token, _ := e.login(t, u)
		start := e.clk.Now()
		for e.clk.Now().Sub(start) < 12*time.Hour-20*time.Minute {
			e.clk.Add(20 * time.Minute)
			if _, err := e.Session(e.ctx, token); err != nil {
				t.Fatalf("Session %s after login = %v", e.clk.Now().Sub(start), err)
			}
		}
		e.clk.Add(start.Add(12 * time.Hour).Sub(e.clk.Now()))
		if _, err := e.Session(e.ctx, token); !errors.Is(err, auth.ErrNoSession) {
			t.Errorf("Session 12 hours after login = %v, want ErrNoSession", err)
		}
	})
	t.Run("bad tokens", func(t *testing.T) {
		token, _ := e.login(t, u)
		for _, bad := range []string{"", "abc", token + "A", strings.ToUpper(token), token[:42] + "=", strings.Repeat("A", 43)} {
			if bad == token {
				continue
			}
			if _, err := e.Session(e.ctx, bad); !errors.Is(err, auth.ErrNoSession) {
				t.Errorf("Session(%q) = %v, want ErrNoSession", bad, err)
			}
		}
	})
}

func TestLogout(t *testing.T) {
	e := mustOpen(t)
	u := e.join(t, "ann@example.org", auth.Officer)
	one, _ := e.login(t, u)
	two, _ := e.login(t, u)
	three, _ := e.login(t, u)
	if err := e.Logout(e.ctx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session(e.ctx, one); !errors.Is(err, auth.ErrNoSession) {
		t.Errorf("Session after Logout = %v, want ErrNoSession", err)
	}
	if _, err := e.Session(e.ctx, two); err != nil {
		t.Errorf("Session of another session after Logout = %v", err)
	}
	if err := e.Logout(e.ctx, one); err != nil {
		t.Errorf("Logout twice = %v, want nil", err)
	}
	if err := e.LogoutEverywhere(e.ctx, "cli", u.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{two, three} {
		if _, err := e.Session(e.ctx, tok); !errors.Is(err, auth.ErrNoSession) {
			t.Errorf("Session after LogoutEverywhere = %v, want ErrNoSession", err)
		}
	}
	if err := e.LogoutEverywhere(e.ctx, "cli", 999); kind(err) != errs.NotFound {
		t.Errorf("LogoutEverywhere(no account) = %v, want not found", err)
	}
	// A new login works.
	e.login(t, u)
}

func TestRoleChangeAndRemovalTakeEffectAtOnce(t *testing.T) {
	e := mustOpen(t)
	admin := e.join(t, "root@example.org", auth.Administrator)
	u := e.join(t, "ann@example.org", auth.Officer, "staff")
	token, p := e.login(t, u)
	if !p.CanPolicy("staff") || p.CanPolicy("guests") || !p.Can(auth.Approve) {
		t.Fatalf("officer for staff: principal %+v", p)
	}
	if err := e.SetRole(e.ctx, "console:"+admin.Email, u.ID, auth.Auditor, []string{"ignored"}); err != nil {
		t.Fatal(err)
	}
	p, err := e.Session(e.ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Role != auth.Auditor || p.Can(auth.Approve) || len(p.Policies) != 0 {
		t.Errorf("after SetRole(auditor), Session = %+v, want an auditor without policies", p)
	}
	if err := e.SetRole(e.ctx, "cli", u.ID, auth.Officer, []string{"b", "a", "b"}); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.Session(e.ctx, token); fmt.Sprint(p.Policies) != "[a b]" {
		t.Errorf("policies = %v, want [a b]", p.Policies)
	}
	if err := e.Remove(e.ctx, "console:"+admin.Email, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Session(e.ctx, token); !errors.Is(err, auth.ErrNoSession) {
		t.Errorf("Session of a removed account = %v, want ErrNoSession", err)
	}
	if _, err := e.Account(e.ctx, u.ID); kind(err) != errs.NotFound {
		t.Errorf("Account(removed) = %v, want not found", err)
	}
	if _, _, err := e.Login(e.ctx, u.Email, u.password, e.code(t, u.secret), "192.0.2.1"); !errors.Is(err, auth.ErrLoginFailed) {
		t.Errorf("Login of a removed account = %v, want ErrLoginFailed", err)
	}
	if err := e.SetRole(e.ctx, "cli", u.ID, auth.Auditor, nil); kind(err) != errs.NotFound {
		t.Errorf("SetRole(removed) = %v, want not found", err)
	}
}

func TestLastAdministrator(t *testing.T) {
	e := mustOpen(t)
	root := e.join(t, "root@example.org", auth.Administrator)
	if err := e.Remove(e.ctx, "cli", root.ID); kind(err) != errs.Forbidden {
		t.Errorf("Remove(last administrator) = %v, want forbidden", err)
	}
	if err := e.SetRole(e.ctx, "cli", root.ID, auth.Officer, []string{auth.AllPolicies}); kind(err) != errs.Forbidden {
		t.Errorf("SetRole(last administrator, officer) = %v, want forbidden", err)
	}
	second := e.join(t, "second@example.org", auth.Administrator)
	if err := e.SetRole(e.ctx, "console:"+root.Email, root.ID, auth.Auditor, nil); kind(err) != errs.Forbidden {
		t.Errorf("SetRole(own account) = %v, want forbidden", err)
	}
	if err := e.Remove(e.ctx, "console:"+root.Email, root.ID); kind(err) != errs.Forbidden {
		t.Errorf("Remove(own account) = %v, want forbidden", err)
	}
	if err := e.Remove(e.ctx, "console:"+second.Email, root.ID); err != nil {
		t.Errorf("Remove(one of two administrators) = %v", err)
	}
	if err := e.Remove(e.ctx, "cli", second.ID); kind(err) != errs.Forbidden {
		t.Errorf("Remove(the remaining administrator) = %v, want forbidden", err)
	}
	list, err := e.Accounts(e.ctx)
	if err != nil || len(list) != 1 || list[0].Email != second.Email {
		t.Errorf("Accounts = %+v, %v; want only %s", list, err, second.Email)
	}
}

// TestAuditHoldsNoSecrets runs through every audited action and then reads
// every audit row: each action is there, the chain verifies, and no
// password, TOTP secret or code, or token appears in any column.
func TestAuditHoldsNoSecrets(t *testing.T) {
	e := mustOpen(t)
	var secrets []string
	setup, err := e.SetupLink(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, setup)
	root := e.joinWith(t, setup, "root@example.org")
	secrets = append(secrets, root.password, root.secret)
	invite, err := e.InviteAccount(e.ctx, "console:root@example.org", "ann@example.org", auth.Officer, []string{"staff"})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, invite)
	ann := e.joinWith(t, invite, "ann@example.org")
	secrets = append(secrets, ann.password, ann.secret)

	e.clk.Add(30 * time.Second)
	code := e.code(t, ann.secret)
	secrets = append(secrets, code)
	token, p, err := e.Login(e.ctx, ann.Email, ann.password, code, "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, token)
	e.clk.Add(30 * time.Second)
	code = e.code(t, ann.secret)
	secrets = append(secrets, code)
	e.Login(e.ctx, ann.Email, "a wrong password", code, "192.0.2.7")
	e.Login(e.ctx, ann.password, ann.password, code, "192.0.2.7") // the password typed as the email
	if err := e.SetRole(e.ctx, "console:root@example.org", ann.ID, auth.Auditor, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Logout(e.ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := e.LogoutEverywhere(e.ctx, "cli", ann.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(e.ctx, "console:root@example.org", ann.ID); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{ // action -> the actor expected
		"account.setup-link":        "system",
		"account.invite":            "console:root@example.org",
		"account.join":              "console:ann@example.org",
		"account.login":             p.Actor(),
		"account.login-failed":      "anonymous",
		"account.role":              "console:root@example.org",
		"account.logout":            "console:ann@example.org",
		"account.logout-everywhere": "cli",
		"account.remove":            "console:root@example.org",
	}
	seen := map[string]bool{}
	var v audit.Verifier
	err = e.db.AuditEvents(e.ctx, func(r audit.Record) error {
		if err := v.Next(r); err != nil {
			return err
		}
		if actor, ok := want[r.Action]; ok && r.Actor == actor {
			seen[r.Action] = true
		}
		row := strings.Join([]string{r.Actor, r.Action, r.Object, r.Detail, string(r.Prev), string(r.Hash)}, "\x00")
		for _, s := range secrets {
			if strings.Contains(row, s) || strings.Contains(strings.ToLower(row), strings.ToLower(s)) {
				t.Errorf("audit event %d (%s) contains a secret", r.Seq, r.Action)
			}
		}
		if r.Action == "account.login-failed" && !strings.Contains(r.Detail, "from 192.0.2.7") {
			t.Errorf("failed login event %q does not name the client address", r.Detail)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for action := range want {
		if !seen[action] {
			t.Errorf("no %s event by %s", action, want[action])
		}
	}
}

// BenchmarkLoginFailed measures what a login costs the server: one argon2id
// verification (19 MiB, 2 passes), a TOTP check and the audit transaction.
func BenchmarkLoginFailed(b *testing.B) {
	e := mustOpen(b)
	u := e.join(b, "ann@example.org", auth.Auditor)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		// A new address each time stays under the throttle; a new account
		// would be locked out after five.
		e.Login(e.ctx, "nobody@example.org", u.password, "000000", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
}

// FuzzSessionToken: no token but the one Login returned opens its session,
// and no input makes Session or OpenJoin fail otherwise than by refusing.
func FuzzSessionToken(f *testing.F) {
	e := mustOpen(f)
	u := e.join(f, "ann@example.org", auth.Auditor)
	e.clk.Add(30 * time.Second)
	token, _, err := e.Login(e.ctx, u.Email, u.password, e.code(f, u.secret), "192.0.2.1")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", token[:42], token + "=", token[:42] + "_", strings.ToLower(token), "\x00", strings.Repeat("/", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := e.Session(e.ctx, s)
		switch {
		case s == token && err != nil:
			t.Errorf("Session(the login's token) = %v", err)
		case s != token && (!errors.Is(err, auth.ErrNoSession) || p != nil):
			t.Errorf("Session(%q) = %v, %v; want ErrNoSession", s, p, err)
		}
		if _, err := e.OpenJoin(e.ctx, s); !errors.Is(err, auth.ErrBadLink) {
			t.Errorf("OpenJoin(%q) = %v, want ErrBadLink", s, err)
		}
	})
}

// TestCodeAcceptedOnceAcrossNodes: two nodes (Services) on one database
// given the same code at the same moment start one session, not two.
func TestCodeAcceptedOnceAcrossNodes(t *testing.T) {
	e := mustOpen(t)
	u := e.join(t, "ann@example.org", auth.Officer)
	other, err := auth.New(auth.Config{Store: e.db, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Add(30 * time.Second)
	code := e.code(t, u.secret)
	nodes := []*auth.Service{e.Service, other, e.Service, other}
	errc := make(chan error, len(nodes))
	for i, s := range nodes {
		go func() {
			_, _, err := s.Login(e.ctx, u.Email, u.password, code, fmt.Sprintf("192.0.2.%d", i+1))
			errc <- err
		}()
	}
	ok := 0
	for range nodes {
		switch err := <-errc; {
		case err == nil:
			ok++
		case !errors.Is(err, auth.ErrLoginFailed):
			t.Errorf("Login = %v, want success or ErrLoginFailed", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d logins with one code succeeded, want 1", ok)
	}
}
