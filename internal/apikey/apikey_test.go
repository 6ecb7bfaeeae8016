package apikey_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
)

func TestParseScopes(t *testing.T) {
	cases := []struct {
		in   string
		want []apikey.Scope
		ok   bool
	}{
		{"invitations:write", []apikey.Scope{apikey.InvitationsWrite}, true},
		{"invite, approve", []apikey.Scope{apikey.ApprovalsWrite, apikey.EnrolmentsRead, apikey.InvitationsRead, apikey.InvitationsWrite}, true},
		{"events:read,events:read", []apikey.Scope{apikey.EventsRead}, true},
		{"", nil, false},
		{"admin", nil, false},
		{"invitations:delete", nil, false},
	}
	for _, c := range cases {
		got, err := apikey.ParseScopes(c.in)
		if (err == nil) != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("ParseScopes(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseLifetime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"90d", 90 * 24 * time.Hour, true}, {"36h", 36 * time.Hour, true},
		{"0d", 0, false}, {"-1h", 0, false}, {"forever", 0, false}, {"9999d", 0, false},
	}
	for _, c := range cases {
		got, err := apikey.ParseLifetime(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	db := testkit.MustOpenDB(t)
	now := time.Now()
	svc := apikey.NewService(db, func() time.Time { return now })
	k, token, err := svc.Create(ctx, "cli", apikey.CreateRequest{Name: "hr", Scopes: []apikey.Scope{apikey.InvitationsWrite}, Policies: []string{"staff"}, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// mca_ + 12 hex + _ + 43 base64url characters (32 octets).
	if !strings.HasPrefix(token, "mca_"+k.ID+"_") || len(token) != 4+12+1+43 {
		t.Fatalf("token %q", token)
	}
	h := sha256.Sum256([]byte(token))
	if string(k.Hash) != string(h[:]) {
		t.Errorf("stored hash is not the SHA-256 of the key")
	}
	got, err := svc.Authenticate(ctx, token)
	if err != nil || got.Name != "hr" || !got.Allows(apikey.InvitationsWrite) || got.Allows(apikey.ApprovalsWrite) || !got.AllowsPolicy("staff") || got.AllowsPolicy("other") {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	// The last character changed for another (not always to "A": the key
	// may end in one).
	other := map[bool]string{true: "B", false: "A"}[strings.HasSuffix(token, "A")]
	for _, bad := range []string{"", token + "x", token[:len(token)-1] + other, "mca_" + k.ID, strings.Replace(token, "mca_", "mcb_", 1)} {
		if _, err := svc.Authenticate(ctx, bad); !errors.Is(err, apikey.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
	if _, _, err := svc.Create(ctx, "cli", apikey.CreateRequest{Name: "hr", Scopes: []apikey.Scope{apikey.EventsRead}}); errs.KindOf(err) != errs.Conflict {
		t.Errorf("second key named hr: %v, want a conflict", err)
	}
	if _, _, err := svc.Create(ctx, "cli", apikey.CreateRequest{Name: "has space", Scopes: []apikey.Scope{apikey.EventsRead}}); errs.KindOf(err) != errs.Invalid {
		t.Errorf("bad name: %v, want invalid", err)
	}

	// Expiry.
	now = now.Add(2 * time.Hour)
	if _, err := svc.Authenticate(ctx, token); !errors.Is(err, apikey.ErrUnauthenticated) {
		t.Errorf("expired key: %v", err)
	}
	now = now.Add(-2 * time.Hour)

	// Revocation: effective at once, audited.
	if err := svc.Revoke(ctx, "admin:ann", "hr"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, token); !errors.Is(err, apikey.ErrUnauthenticated) {
		t.Errorf("revoked key: %v", err)
	}
	if err := svc.Revoke(ctx, "admin:ann", "hr"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("second revocation: %v", err)
	}
	list, err := svc.List(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt.IsZero() {
		t.Fatalf("List = %+v, %v", list, err)
	}
	evs, err := db.AuditFilter(ctx, sqlite.AuditQuery{Object: "apikey:hr"})
	if err != nil || len(evs) != 2 || evs[0].Action != "apikey.revoke" || evs[0].Actor != "admin:ann" || evs[1].Action != "apikey.create" {
		t.Fatalf("audit events %+v, %v", evs, err)
	}
	if strings.Contains(evs[1].Detail, token[17:]) {
		t.Errorf("the audit event holds the key")
	}
}
