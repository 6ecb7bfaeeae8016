// Package apikey issues, checks and revokes the keys with which other systems call the integration API.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// Scope is one kind of action a key may take.
type Scope string

// The scopes. A key holds any set of them.
const (
	InvitationsRead    Scope = "invitations:read"    // list and read invitations
	InvitationsWrite   Scope = "invitations:write"   // invite, resend, cancel
	ReferralsWrite     Scope = "referrals:write"     // mint signed referral links
	EnrolmentsRead     Scope = "enrolments:read"     // list and read enrolments with their history
	ApprovalsWrite     Scope = "approvals:write"     // approve and reject applications
	CertificatesRead   Scope = "certificates:read"   // search and fetch certificates
	CertificatesRevoke Scope = "certificates:revoke" // revoke certificates
	PoliciesRead       Scope = "policies:read"       // read enrolment policies
	EventsRead         Scope = "events:read"         // read the audit events
)

// Scopes lists every scope.
var Scopes = []Scope{InvitationsRead, InvitationsWrite, ReferralsWrite, EnrolmentsRead, ApprovalsWrite,
	CertificatesRead, CertificatesRevoke, PoliciesRead, EventsRead}

// aliases are the short names the command line accepts for common sets.
var aliases = map[string][]Scope{
	"invite":  {InvitationsWrite, InvitationsRead},
	"refer":   {ReferralsWrite},
	"approve": {ApprovalsWrite, EnrolmentsRead},
	"revoke":  {CertificatesRevoke, CertificatesRead},
	"read":    {InvitationsRead, EnrolmentsRead, CertificatesRead, PoliciesRead, EventsRead},
}

// ParseScopes parses a comma-separated list of scopes and aliases
// ("invite", "refer", "approve", "revoke", "read") into a sorted set.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if a, ok := aliases[f]; ok {
			out = append(out, a...)
			continue
		}
		if !slices.Contains(Scopes, Scope(f)) {
			return nil, errs.E(errs.Invalid, "unknown scope %q (known: %s, or invite, refer, approve, revoke, read)", f, scopeList())
		}
		out = append(out, Scope(f))
	}
	if len(out) == 0 {
		return nil, errs.E(errs.Invalid, "a key needs at least one scope")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func scopeList() string {
	s := make([]string, len(Scopes))
	for i, sc := range Scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ", ")
}

// Key is an API key as stored: never the key itself, only its SHA-256.
type Key struct {
	ID        string   // public part of the key, 12 hex digits
	Name      string   // unique; the audit log names the key "apikey:<Name>"
	Scopes    []Scope  // sorted
	Policies  []string // the policies it may act on; empty means all
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
	Hash      []byte    // SHA-256 of the whole key
}

// Actor is the key's identity in the audit log.
func (k *Key) Actor() string { return "apikey:" + k.Name }

// Allows reports whether the key holds scope s.
func (k *Key) Allows(s Scope) bool { return slices.Contains(k.Scopes, s) }

// AllowsPolicy reports whether the key may act on the named policy.
func (k *Key) AllowsPolicy(policy string) bool {
	return len(k.Policies) == 0 || slices.Contains(k.Policies, policy)
}

// Active reports whether the key works at now: not revoked, not expired.
func (k *Key) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// Errors a Store returns.
var (
	ErrNotFound  = errors.New("apikey: no such key")
	ErrDuplicate = errors.New("apikey: a key with that name exists")
)

// Store keeps keys. Each write appends its audit event in the same
// transaction.
type Store interface {
	// InsertAPIKey stores k; ErrDuplicate when its name is taken.
	InsertAPIKey(ctx context.Context, k *Key, ev enrol.Event) error
	// APIKey returns the key with the given ID, or ErrNotFound.
	APIKey(ctx context.Context, id string) (*Key, error)
	// APIKeys lists every key, revoked ones included, by name.
	APIKeys(ctx context.Context) ([]*Key, error)
	// RevokeAPIKey marks the named key revoked at at; ErrNotFound when
	// there is no unrevoked key of that name.
	RevokeAPIKey(ctx context.Context, name string, at time.Time, ev enrol.Event) error
}

// Service creates, lists, revokes and checks keys; the command line and
// the console use it alike.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service on store; now nil means time.Now.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Prefix starts every key, so that secret scanners recognise one.
const Prefix = "mca_"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CreateRequest says what key to make.
type CreateRequest struct {
	Name     string
	Scopes   []Scope
	Policies []string      // empty: every policy
	Lifetime time.Duration // 0: the key does not expire
}

// Create makes a key and returns it with its secret form, which is shown
// this once and never stored: "mca_" + ID + "_" + 32 random octets in
// base64url. Errors are of kind errs.Invalid for a bad request and
// errs.Conflict for a name in use.
func (s *Service) Create(ctx context.Context, actor string, r CreateRequest) (*Key, string, error) {
	if !nameRE.MatchString(r.Name) {
		return nil, "", errs.E(errs.Invalid, "a key name is 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit")
	}
	if len(r.Scopes) == 0 {
		return nil, "", errs.E(errs.Invalid, "a key needs at least one scope")
	}
	for _, sc := range r.Scopes {
		if !slices.Contains(Scopes, sc) {
			return nil, "", errs.E(errs.Invalid, "unknown scope %q", sc)
		}
	}
	if r.Lifetime < 0 {
		return nil, "", errs.E(errs.Invalid, "a key's lifetime must be positive")
	}
	now := s.now()
	id := make([]byte, 6)
	secret := make([]byte, 32)
	rand.Read(id)
	rand.Read(secret)
	k := &Key{ID: hex.EncodeToString(id), Name: r.Name, Scopes: slices.Compact(slices.Sorted(slices.Values(r.Scopes))),
		Policies: slices.Compact(slices.Sorted(slices.Values(r.Policies))), CreatedBy: actor, CreatedAt: now.UTC()}
	if r.Lifetime > 0 {
		k.ExpiresAt = now.Add(r.Lifetime).UTC()
	}
	token := Prefix + k.ID + "_" + base64.RawURLEncoding.EncodeToString(secret)
	h := sha256.Sum256([]byte(token))
	k.Hash = h[:]
	detail := "scopes " + joinScopes(k.Scopes)
	if len(k.Policies) > 0 {
		detail += "; policies " + strings.Join(k.Policies, ",")
	}
	if !k.ExpiresAt.IsZero() {
		detail += "; expires " + k.ExpiresAt.Format(time.RFC3339)
	}
	err := s.store.InsertAPIKey(ctx, k, enrol.Event{Actor: actor, Action: "apikey.create", Object: "apikey:" + k.Name, Detail: detail})
	if errors.Is(err, ErrDuplicate) {
		return nil, "", errs.Wrap(errs.Conflict, err, fmt.Sprintf("a key named %q exists already", r.Name))
	}
	if err != nil {
		return nil, "", err
	}
	return k, token, nil
}

func joinScopes(sc []Scope) string {
	s := make([]string, len(sc))
	for i, x := range sc {
		s[i] = string(x)
	}
	return strings.Join(s, ",")
}

// List returns every key by name, revoked and expired ones included.
func (s *Service) List(ctx context.Context) ([]*Key, error) { return s.store.APIKeys(ctx) }

// Revoke revokes the named key; the next request with it is refused.
func (s *Service) Revoke(ctx context.Context, actor, name string) error {
	err := s.store.RevokeAPIKey(ctx, name, s.now().UTC(), enrol.Event{Actor: actor, Action: "apikey.revoke", Object: "apikey:" + name})
	if errors.Is(err, ErrNotFound) {
		return errs.Wrap(errs.NotFound, err, fmt.Sprintf("no unrevoked key named %q", name))
	}
	return err
}

// ErrUnauthenticated is the one answer for a key that does not work,
// whatever the reason, so that a caller learns nothing about other keys.
var ErrUnauthenticated = errors.New("apikey: missing, unknown, revoked or expired key")

// Authenticate returns the key whose secret form is token. It reads the
// store on every call, so a revocation takes effect at the next request.
// Any key that does not work gives ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, token string) (*Key, error) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok || len(token) > 128 {
		return nil, ErrUnauthenticated
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 12 {
		return nil, ErrUnauthenticated
	}
	k, err := s.store.APIKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(h[:], k.Hash) != 1 || !k.Active(s.now()) {
		return nil, ErrUnauthenticated
	}
	return k, nil
}

// ParseLifetime parses a key lifetime: a number of days ("90d") or a Go
// duration ("36h"); "" means no expiry.
func ParseLifetime(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 3650 {
			return 0, errs.E(errs.Invalid, "invalid lifetime %q: write a number of days from 1 to 3650, e.g. 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errs.E(errs.Invalid, "invalid lifetime %q: write e.g. 90d or 36h", s)
	}
	return d, nil
}
