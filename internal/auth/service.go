package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/errs"
)

// Config configures a Service. Store is required; every other zero value
// means the default given.
type Config struct {
	Store Store
	Now   func() time.Time // nil: time.Now
	// Issuer labels the TOTP secret in authenticator apps, such as
	// "mailca example.org"; "" means "mailca".
	Issuer          string
	IdleTimeout     time.Duration // a session unused this long ends; default 30 minutes
	AbsoluteTimeout time.Duration // a session this old ends; default 12 hours
	LinkLifetime    time.Duration // setup and join links; default 24 hours
	MaxFailures     int           // failed logins within Lockout that lock an account; default 5
	Lockout         time.Duration // the failure window and the lockout's length; default 15 minutes
	// MaxHashing is how many argon2id password checks (19 MiB each) run at
	// once in this process; a login beyond it gets ErrThrottled. Default
	// twice GOMAXPROCS.
	MaxHashing int
}

// Service manages administrator accounts: invitations, login with password
// and TOTP, and sessions.
type Service struct {
	store  Store
	now    func() time.Time
	issuer string
	idle   time.Duration
	abs    time.Duration
	link   time.Duration
	maxF   int
	lock   time.Duration
	dummy  string // an argon2id hash that no password matches, for unknown accounts
	thr    throttle
	// hashing holds a slot for each password check in progress.
	hashing chan struct{}
	// sealKey binds a join form's TOTP secret to its join token; loaded
	// from the store on first use (see joinKey).
	sealMu  sync.Mutex
	sealKey []byte
}

// The errors a caller tells apart. Their messages are safe to show.
var (
	// ErrLoginFailed is every failed login: unknown account, wrong
	// password, wrong or reused code, locked account. One message and the
	// same work, so that a guesser learns nothing of which it was.
	ErrLoginFailed = errors.New("auth: wrong email address, password or code")
	// ErrThrottled is a login refused, before any work, because its client
	// address made too many attempts or the server is busy checking
	// passwords.
	ErrThrottled = errors.New("auth: too many attempts; wait a few minutes")
	// ErrNoSession is a session token that is missing, unknown, idle too
	// long, too old, ended, or whose account was removed.
	ErrNoSession = errors.New("auth: no session")
	// ErrBadLink is a setup or join token that is unknown, used or expired.
	ErrBadLink = errors.New("auth: this link is unknown, used or expired")
)

// touchEvery is how stale a session's last-seen time may get before
// Session writes it again: one write a minute per active session rather
// than one per request. The idle timeout is measured from that time.
const touchEvery = time.Minute

// New returns a Service. It computes one argon2id hash, the stand-in that
// a login for an unknown account is checked against.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: no store")
	}
	s := &Service{
		store: cfg.Store, now: cfg.Now, issuer: cfg.Issuer,
		idle: cfg.IdleTimeout, abs: cfg.AbsoluteTimeout, link: cfg.LinkLifetime,
		maxF: cfg.MaxFailures, lock: cfg.Lockout,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.issuer == "" {
		s.issuer = "mailca"
	}
	s.idle = cmp(s.idle, 30*time.Minute)
	s.abs = cmp(s.abs, 12*time.Hour)
	s.link = cmp(s.link, 24*time.Hour)
	s.lock = cmp(s.lock, 15*time.Minute)
	if s.maxF <= 0 {
		s.maxF = 5
	}
	n := cfg.MaxHashing
	if n <= 0 {
		n = 2 * runtime.GOMAXPROCS(0)
	}
	s.hashing = make(chan struct{}, n)
	tok, _ := newToken()
	dummy, err := hashPassword(tok)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.dummy = dummy
	return s, nil
}

func cmp(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// LinkLifetime returns how long setup and join links are valid.
func (s *Service) LinkLifetime() time.Duration { return s.link }

// NeedsSetup reports whether no account exists yet.
func (s *Service) NeedsSetup(ctx context.Context) (bool, error) {
	n, err := s.store.AuthCountAccounts(ctx)
	return n == 0, err
}

// SetupLink mints the one-time token for creating the first administrator,
// replacing any earlier setup token; errs.Conflict once an account exists.
// The console serves it at /console/join/{token}.
func (s *Service) SetupLink(ctx context.Context) (string, error) {
	token, hash := newToken()
	now := s.now()
	err := s.store.AuthTx(ctx, func(tx Tx) error {
		n, _, err := tx.CountAccounts()
		if err != nil {
			return err
		}
		if n > 0 {
			return errs.E(errs.Conflict, "an administrator account exists: no setup link")
		}
		if _, err := tx.DeleteUnusedJoinTokens(true, ""); err != nil {
			return err
		}
		t := &JoinToken{Hash: hash, Role: Administrator, Setup: true, CreatedBy: "system", CreatedAt: now, ExpiresAt: now.Add(s.link)}
		if err := tx.InsertJoinToken(t); err != nil {
			return err
		}
		return tx.Audit(Event{Actor: "system", Action: "account.setup-link", Object: "account:",
			Detail: "first administrator's link, valid until " + stamp(t.ExpiresAt)})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// InviteAccount mints a one-time join token for a new account with this
// email, role and (for an officer) policies, replacing earlier unused
// invitations of the email. An officer's policies are names, or
// [AllPolicies] for every policy; errs.Invalid for a bad email or role or
// an officer with no policies, errs.Conflict when the account exists.
// Audited with actor.
func (s *Service) InviteAccount(ctx context.Context, actor, email string, role Role, policies []string) (string, error) {
	email, err := checkEmail(email)
	if err != nil {
		return "", err
	}
	if policies, err = checkRole(role, policies); err != nil {
		return "", err
	}
	token, hash := newToken()
	now := s.now()
	err = s.store.AuthTx(ctx, func(tx Tx) error {
		if _, err := tx.AccountByEmail(email); err == nil {
			return errs.E(errs.Conflict, "an account for %s exists", email)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := tx.DeleteUnusedJoinTokens(false, email); err != nil {
			return err
		}
		t := &JoinToken{Hash: hash, Email: email, Role: role, Policies: policies, CreatedBy: actor, CreatedAt: now, ExpiresAt: now.Add(s.link)}
		if err := tx.InsertJoinToken(t); err != nil {
			return err
		}
		return tx.Audit(Event{Actor: actor, Action: "account.invite", Object: "account:" + email,
			Detail: describeRole(role, policies) + ", link valid until " + stamp(t.ExpiresAt)})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Join is what a join (or setup) token is for.
type Join struct {
	Email    string // "" for a setup token
	Role     Role
	Policies []string
	Expires  time.Time
	Setup    bool // the first administrator: the email is chosen on the form
}

// OpenJoin returns what the token is for, without spending it; ErrBadLink
// when it is unknown, used or expired, or is a setup token and an account
// exists.
func (s *Service) OpenJoin(ctx context.Context, token string) (*Join, error) {
	t, err := s.openJoin(ctx, token)
	if err != nil {
		return nil, err
	}
	return &Join{Email: t.Email, Role: t.Role, Policies: t.Policies, Expires: t.ExpiresAt, Setup: t.Setup}, nil
}

func (s *Service) openJoin(ctx context.Context, token string) (*JoinToken, error) {
	hash, ok := tokenHash(token)
	if !ok {
		return nil, ErrBadLink
	}
	t, err := s.store.AuthJoinToken(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrBadLink
	}
	if err != nil {
		return nil, err
	}
	if !t.UsedAt.IsZero() || !s.now().Before(t.ExpiresAt) {
		return nil, ErrBadLink
	}
	if t.Setup {
		if empty, err := s.NeedsSetup(ctx); err != nil {
			return nil, err
		} else if !empty {
			return nil, ErrBadLink
		}
	}
	return t, nil
}

// Join spends token and creates the account. email is used only for a
// setup token (otherwise the invited one is); name is the account holder's
// name; password must be at least 12 characters and at most 256 bytes and
// must not contain the email's local part; sealed is TOTPKey.Sealed of a
// key that NewTOTPKey made for this token (the form carries it: the secret
// bound to the token, so that nobody chooses their own) and code is a
// current TOTP code for it, which cannot then be used to log in. from is the client address, for the audit
// log. Every role has TOTP.
//
// Join returns ErrBadLink for a token that OpenJoin refuses, errs.Invalid
// naming the field for bad input (the token is not spent), and
// errs.Conflict when an account with the email exists.
func (s *Service) Join(ctx context.Context, token, email, name, password, sealed, code, from string) (*Account, error) {
	ctx = audit.WithOrigin(ctx, from) // the audit events say from where
	t, err := s.openJoin(ctx, token)
	if err != nil {
		return nil, err
	}
	if t.Setup {
		if email, err = checkEmail(email); err != nil {
			return nil, err
		}
	} else {
		email = t.Email
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) {
		return nil, errs.E(errs.Invalid, "name: give your name, at most 200 characters")
	}
	if err := checkPassword12(password, email); err != nil {
		return nil, err
	}
	totpSecret, ok := s.UnsealSecret(token, sealed)
	if !ok || !validSecret(totpSecret) {
		return nil, errs.E(errs.Invalid, "authenticator secret: not a TOTP secret made for this form; reload the page")
	}
	now := s.now().Truncate(time.Second) // as stored
	step, ok := totpStep(totpSecret, strings.TrimSpace(code), now)
	if !ok {
		return nil, errs.E(errs.Invalid, "code: not the current code of the authenticator app; check that the phone's clock is right")
	}
	pwHash, err := hashPassword(password)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	a := &Account{Email: email, Name: name, CreatedAt: now}
	err = s.store.AuthTx(ctx, func(tx Tx) error {
		t, err := tx.UseJoinToken(t.Hash, now)
		if errors.Is(err, ErrNotFound) {
			return ErrBadLink
		}
		if err != nil {
			return err
		}
		if t.Setup {
			if n, _, err := tx.CountAccounts(); err != nil {
				return err
			} else if n > 0 {
				return ErrBadLink
			}
		}
		a.Role, a.Policies = t.Role, t.Policies
		if err := tx.InsertAccount(a, pwHash, totpSecret, step); errors.Is(err, ErrDuplicate) {
			return errs.E(errs.Conflict, "an account for %s exists", email)
		} else if err != nil {
			return err
		}
		how := "invited by " + t.CreatedBy
		if t.Setup {
			how = "first administrator"
		}
		return tx.Audit(Event{Actor: "console:" + email, Action: "account.join", Object: "account:" + email,
			Detail: describeRole(a.Role, a.Policies) + ", " + how})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Login checks email, password and TOTP code and starts a session. A code
// is accepted once: its time step, or an earlier one, is refused after.
// from is the client address: the throttle counts attempts per address,
// and the audit log records it. Login returns the session token (32
// random bytes, base64url; stored only as its SHA-256) and the principal.
//
// Every failure is ErrLoginFailed, including an unknown email and a locked
// account, after the same argon2id work; MaxFailures failures of an
// account within Lockout lock it for Lockout. ErrThrottled comes before any
// work: for a client address over its rate, or when MaxHashing checks are
// running already.
//
// The lockout holds against concurrent guesses: each attempt records its
// failure before its password is checked (and a success deletes it), so
// the attempts in flight count too, and one beyond MaxFailures is refused
// unchecked.
func (s *Service) Login(ctx context.Context, email, password, code, from string) (string, *Principal, error) {
	ctx = audit.WithOrigin(ctx, from) // the audit events say from where
	if !s.thr.allow(from, s.now()) {
		return "", nil, ErrThrottled
	}
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	default:
		return "", nil, ErrThrottled
	}
	typed := email
	email = strings.ToLower(strings.TrimSpace(email))
	if len(password) > maxPassword {
		// No stored password is this long: check a short stand-in, the
		// same work, rather than hash a body-sized string.
		password = ""
	}
	c, err := s.store.AuthCredentials(ctx, email)
	if errors.Is(err, ErrNotFound) {
		checkPassword(password, s.dummy)
		return "", nil, s.failed(ctx, nil, typed, "unknown account", 0)
	}
	if err != nil {
		return "", nil, err
	}
	now := s.now().Truncate(time.Second) // as stored
	if now.Before(c.LockedUntil) {
		checkPassword(password, s.dummy)
		return "", nil, s.failed(ctx, c, typed, "account locked", 0)
	}
	// 1. Reserve this attempt's failure, before the password is checked.
	n, err := s.reserve(ctx, c, now)
	if err != nil {
		return "", nil, err
	}
	if n > s.maxF {
		// Earlier attempts, finished or in flight, reached the limit.
		checkPassword(password, s.dummy)
		return "", nil, s.failed(ctx, c, typed, "account locked", 0)
	}
	// 2. Check.
	pwOK := checkPassword(password, c.PasswordHash)
	step, codeOK := totpStep(c.TOTPSecret, strings.TrimSpace(code), now)
	var reason string
	switch {
	case !pwOK:
		reason = "wrong password"
	case !codeOK:
		reason = "wrong code"
	case step <= c.TOTPStep:
		reason = "code already used"
	}
	if reason != "" {
		// 3. The reserved failure stands.
		return "", nil, s.failed(ctx, c, typed, reason, n)
	}

	// 4. Success: accept the code, unless the account was locked since.
	token, hash := newToken()
	var p *Principal
	err = s.store.AuthTx(ctx, func(tx Tx) error {
		// Again inside the transaction: another node may have accepted
		// this code, or locked the account, since the read above.
		if ok, err := tx.AcceptLogin(c.ID, step, now); err != nil || !ok {
			if err == nil {
				err = errLost
			}
			return err
		}
		if err := tx.ClearFailures(c.ID); err != nil {
			return err
		}
		if err := tx.PurgeSessions(c.ID, now.Add(-s.abs)); err != nil {
			return err
		}
		sess := &SessionRecord{AccountID: c.ID, CreatedAt: now, LastSeen: now}
		if err := tx.InsertSession(sess, hash); err != nil {
			return err
		}
		a := c.Account
		a.LastLogin = now
		p = &Principal{Account: a, SessionID: sess.ID}
		return tx.Audit(Event{Actor: p.Actor(), Action: "account.login", Object: "account:" + c.Email,
			Detail: fmt.Sprintf("session %d", sess.ID)})
	})
	if errors.Is(err, errLost) {
		return "", nil, s.failed(ctx, c, typed, "code already used or account locked", n)
	}
	if err != nil {
		return "", nil, err
	}
	return token, p, nil
}

// errLost is a login that lost a race inside its transaction.
var errLost = errors.New("auth: login lost a race")

// reserve records a failed login of c at now, before its password is
// checked, and returns how many failures of c count towards a lockout,
// this one included.
func (s *Service) reserve(ctx context.Context, c *Credentials, now time.Time) (int, error) {
	since := now.Add(-s.lock)
	if c.LockedUntil.After(since) {
		// Failures before a lockout ended do not count again.
		since = c.LockedUntil.Add(-time.Second)
	}
	var n int
	err := s.store.AuthTx(ctx, func(tx Tx) error {
		var err error
		n, err = tx.AddFailure(c.ID, now, since)
		return err
	})
	return n, err
}

// failed audits a failed login of c (nil for an unknown account) and
// returns ErrLoginFailed. n is the count reserve returned for a checked
// attempt, 0 otherwise: when it reaches MaxFailures the account is locked.
// The audit event holds the email as typed, when it looks like one: a
// password typed into the email field stays out of the log.
func (s *Service) failed(ctx context.Context, c *Credentials, typed, reason string, n int) error {
	now := s.now()
	object := "account:"
	if e, err := checkEmail(typed); err == nil {
		object += e
	} else {
		object += "(not an email address)"
	}
	err := s.store.AuthTx(ctx, func(tx Tx) error {
		if c != nil && n >= s.maxF {
			until := now.Add(s.lock)
			if err := tx.Lock(c.ID, until); err != nil {
				return err
			}
			if err := tx.Audit(Event{Actor: "system", Action: "account.lockout", Object: "account:" + c.Email,
				Detail: fmt.Sprintf("%d failed logins within %s; locked until %s", n, s.lock, stamp(until))}); err != nil {
				return err
			}
		}
		return tx.Audit(Event{Actor: "anonymous", Action: "account.login-failed", Object: object, Detail: reason})
	})
	if err != nil {
		return err
	}
	return ErrLoginFailed
}

// Session returns the principal of a session token and extends its idle
// timeout; ErrNoSession when the token is missing, unknown, idle longer
// than IdleTimeout, older than AbsoluteTimeout, ended, or its account is
// gone. It reloads the account on every call, so a removed account or a
// changed role takes effect on the next request.
func (s *Service) Session(ctx context.Context, token string) (*Principal, error) {
	hash, ok := tokenHash(token)
	if !ok {
		return nil, ErrNoSession
	}
	sess, a, err := s.store.AuthSession(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !sess.EndedAt.IsZero() || !now.Before(sess.LastSeen.Add(s.idle)) || !now.Before(sess.CreatedAt.Add(s.abs)) {
		return nil, ErrNoSession
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		if err := s.store.AuthTx(ctx, func(tx Tx) error { return tx.TouchSession(sess.ID, now) }); err != nil {
			return nil, err
		}
	}
	return &Principal{Account: *a, SessionID: sess.ID}, nil
}

// Logout ends the session of token. A token with no live session is no
// error: the caller clears its cookie either way.
func (s *Service) Logout(ctx context.Context, token string) error {
	hash, ok := tokenHash(token)
	if !ok {
		return nil
	}
	now := s.now()
	return s.store.AuthTx(ctx, func(tx Tx) error {
		sess, err := tx.EndSession(hash, now)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		a, err := tx.Account(sess.AccountID)
		if err != nil {
			return err
		}
		return tx.Audit(Event{Actor: "console:" + a.Email, Action: "account.logout", Object: "account:" + a.Email,
			Detail: fmt.Sprintf("session %d", sess.ID)})
	})
}

// LogoutEverywhere ends every session of the account; errs.NotFound.
// Audited with actor.
func (s *Service) LogoutEverywhere(ctx context.Context, actor string, accountID int64) error {
	now := s.now()
	return s.store.AuthTx(ctx, func(tx Tx) error {
		a, err := s.txAccount(tx, accountID)
		if err != nil {
			return err
		}
		n, err := tx.EndSessions(a.ID, now)
		if err != nil {
			return err
		}
		return tx.Audit(Event{Actor: actor, Action: "account.logout-everywhere", Object: "account:" + a.Email,
			Detail: fmt.Sprintf("%d sessions ended", n)})
	})
}

// Accounts returns every account, ordered by email.
func (s *Service) Accounts(ctx context.Context) ([]Account, error) {
	return s.store.AuthAccounts(ctx)
}

// Account returns the account with this id; errs.NotFound.
func (s *Service) Account(ctx context.Context, id int64) (*Account, error) {
	a, err := s.store.AuthAccount(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.E(errs.NotFound, "no account %d", id)
	}
	return a, err
}

// AccountByEmail returns the account with this email; errs.NotFound.
func (s *Service) AccountByEmail(ctx context.Context, email string) (*Account, error) {
	c, err := s.store.AuthCredentials(ctx, strings.ToLower(strings.TrimSpace(email)))
	if errors.Is(err, ErrNotFound) {
		return nil, errs.E(errs.NotFound, "no account for %s", strings.TrimSpace(email))
	}
	if err != nil {
		return nil, err
	}
	return &c.Account, nil
}

// SetRole changes an account's role and officer policies (see
// InviteAccount); its sessions see it on their next request. Demoting an
// administrator also deletes the unused account invitations it made.
// errs.Invalid for a bad role or an officer without policies,
// errs.NotFound, and errs.Forbidden for changing your own role (actor
// "console:" and the account's email) or demoting the last administrator.
// Audited with actor.
func (s *Service) SetRole(ctx context.Context, actor string, id int64, role Role, policies []string) error {
	policies, err := checkRole(role, policies)
	if err != nil {
		return err
	}
	return s.store.AuthTx(ctx, func(tx Tx) error {
		a, err := s.txAccount(tx, id)
		if err != nil {
			return err
		}
		if actor == "console:"+a.Email {
			return errs.E(errs.Forbidden, "you cannot change your own role")
		}
		if a.Role == Administrator && role != Administrator {
			if _, admins, err := tx.CountAccounts(); err != nil {
				return err
			} else if admins <= 1 {
				return errs.E(errs.Forbidden, "%s is the last administrator", a.Email)
			}
		}
		if err := tx.SetRole(id, role, policies); err != nil {
			return err
		}
		detail := describeRole(a.Role, a.Policies) + " -> " + describeRole(role, policies)
		if a.Role == Administrator && role != Administrator {
			n, err := tx.DeleteJoinTokensBy("console:" + a.Email)
			if err != nil {
				return err
			}
			detail += fmt.Sprintf("; %d unused invitations it made cancelled", n)
		}
		return tx.Audit(Event{Actor: actor, Action: "account.role", Object: "account:" + a.Email, Detail: detail})
	})
}

// Remove deletes the account, ends its sessions and deletes the unused
// account invitations it made. errs.NotFound, and errs.Forbidden for
// removing yourself or the last administrator. Audited with actor.
func (s *Service) Remove(ctx context.Context, actor string, id int64) error {
	return s.store.AuthTx(ctx, func(tx Tx) error {
		a, err := s.txAccount(tx, id)
		if err != nil {
			return err
		}
		if actor == "console:"+a.Email {
			return errs.E(errs.Forbidden, "you cannot remove your own account")
		}
		if a.Role == Administrator {
			if _, admins, err := tx.CountAccounts(); err != nil {
				return err
			} else if admins <= 1 {
				return errs.E(errs.Forbidden, "%s is the last administrator", a.Email)
			}
		}
		if err := tx.DeleteAccount(id); err != nil {
			return err
		}
		n, err := tx.DeleteJoinTokensBy("console:" + a.Email)
		if err != nil {
			return err
		}
		return tx.Audit(Event{Actor: actor, Action: "account.remove", Object: "account:" + a.Email,
			Detail: describeRole(a.Role, a.Policies) + fmt.Sprintf("; %d unused invitations it made cancelled", n)})
	})
}

// Unlock lifts the lockout of an account and forgets its failed logins;
// errs.NotFound. Audited with actor.
func (s *Service) Unlock(ctx context.Context, actor string, id int64) error {
	return s.store.AuthTx(ctx, func(tx Tx) error {
		a, err := s.txAccount(tx, id)
		if err != nil {
			return err
		}
		if err := tx.Lock(id, time.Time{}); err != nil {
			return err
		}
		if err := tx.ClearFailures(id); err != nil {
			return err
		}
		detail := "was not locked"
		if s.now().Before(a.LockedUntil) {
			detail = "was locked until " + stamp(a.LockedUntil)
		}
		return tx.Audit(Event{Actor: actor, Action: "account.unlock", Object: "account:" + a.Email, Detail: detail})
	})
}

// Invitations returns the account invitations not yet used nor expired,
// ordered by email. Their tokens are not among them: only hashes are
// stored.
func (s *Service) Invitations(ctx context.Context) ([]JoinToken, error) {
	all, err := s.store.AuthInvitations(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return slices.DeleteFunc(all, func(t JoinToken) bool { return !now.Before(t.ExpiresAt) }), nil
}

// CancelInvitation deletes the unused account invitation with this id;
// errs.NotFound. Audited with actor as account.invite-cancel.
func (s *Service) CancelInvitation(ctx context.Context, actor string, id int64) (*JoinToken, error) {
	var t *JoinToken
	err := s.store.AuthTx(ctx, func(tx Tx) error {
		var err error
		t, err = tx.DeleteInvitation(id)
		if errors.Is(err, ErrNotFound) {
			return errs.E(errs.NotFound, "no unused invitation %d", id)
		}
		if err != nil {
			return err
		}
		return tx.Audit(Event{Actor: actor, Action: "account.invite-cancel", Object: "account:" + t.Email,
			Detail: describeRole(t.Role, t.Policies) + ", invited by " + t.CreatedBy})
	})
	return t, err
}

// CancelInvitationsOf deletes the unused account invitations of email;
// errs.NotFound when there is none. Audited with actor as
// account.invite-cancel.
func (s *Service) CancelInvitationsOf(ctx context.Context, actor, email string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	return s.store.AuthTx(ctx, func(tx Tx) error {
		n, err := tx.DeleteUnusedJoinTokens(false, email)
		if err != nil {
			return err
		}
		if n == 0 {
			return errs.E(errs.NotFound, "no unused invitation for %s", email)
		}
		return tx.Audit(Event{Actor: actor, Action: "account.invite-cancel", Object: "account:" + email,
			Detail: fmt.Sprintf("%d unused invitations", n)})
	})
}

func (s *Service) txAccount(tx Tx, id int64) (*Account, error) {
	a, err := tx.Account(id)
	if errors.Is(err, ErrNotFound) {
		return nil, errs.E(errs.NotFound, "no account %d", id)
	}
	return a, err
}

// checkEmail returns email trimmed and in lower case, or errs.Invalid.
func checkEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email || len(email) > 254 {
		return "", errs.E(errs.Invalid, "email: not an email address such as ann@example.org")
	}
	return email, nil
}

// checkRole validates role and returns the policies to store: sorted,
// without duplicates, and none for a role other than officer. An officer
// needs policies: [AllPolicies] (alone, or with others that it covers)
// or names.
func checkRole(role Role, policies []string) ([]string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, errs.E(errs.Invalid, "role: one of administrator, officer, auditor")
	}
	if role != Officer {
		return nil, nil
	}
	if slices.Contains(policies, AllPolicies) {
		return []string{AllPolicies}, nil
	}
	if len(policies) == 0 {
		return nil, errs.E(errs.Invalid, "policies: choose the officer's policies, or all policies")
	}
	var out []string
	for _, p := range policies {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > 100 {
			return nil, errs.E(errs.Invalid, "policies: a policy name is empty or too long")
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// maxPassword is the longest password, in bytes.
const maxPassword = 256

// checkPassword12 enforces the password rules.
func checkPassword12(password, email string) error {
	switch {
	case utf8.RuneCountInString(password) < 12:
		return errs.E(errs.Invalid, "password: at least 12 characters")
	case len(password) > maxPassword:
		return errs.E(errs.Invalid, "password: at most %d bytes", maxPassword)
	}
	local, _, _ := strings.Cut(email, "@")
	if len(local) >= 3 && strings.Contains(strings.ToLower(password), strings.ToLower(local)) {
		return errs.E(errs.Invalid, "password: must not contain your email address's name")
	}
	return nil
}

func describeRole(r Role, policies []string) string {
	switch {
	case r != Officer:
		return "role " + string(r)
	case slices.Equal(policies, []string{AllPolicies}):
		return "role officer (all policies)"
	case len(policies) == 0:
		return "role officer (no policies)"
	}
	return "role officer (policies " + strings.Join(policies, ", ") + ")"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
