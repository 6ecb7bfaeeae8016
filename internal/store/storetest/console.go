package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/web/api"
	"github.com/mailca/mailca/internal/webhook"
)

// The queries of the console, its accounts, the API and webhooks.

func authTx(t *testing.T, s store.Store, fn func(auth.Tx) error) {
	t.Helper()
	if err := s.AuthTx(context.Background(), fn); err != nil {
		t.Fatalf("AuthTx: %v", err)
	}
}

func testAccounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	ann := &auth.Account{Email: "ann@example.com", Name: "Ann", Role: auth.Administrator, CreatedAt: base}
	bob := &auth.Account{Email: "bob@example.com", Name: "Bob", Role: auth.Officer, Policies: []string{"p", "q"}, CreatedAt: base}
	authTx(t, s, func(tx auth.Tx) error {
		if err := tx.InsertAccount(bob, "hash-b", "SECRETB", 0); err != nil {
			return err
		}
		if err := tx.InsertAccount(ann, "hash-a", "SECRETA", 5); err != nil {
			return err
		}
		// A taken email is refused, and the transaction carries on.
		if err := tx.InsertAccount(&auth.Account{Email: "ann@example.com", Role: auth.Auditor, CreatedAt: base}, "x", "y", 0); !errors.Is(err, auth.ErrDuplicate) {
			t.Errorf("InsertAccount(taken email) = %v, want ErrDuplicate", err)
		}
		return tx.Audit(auth.Event{Actor: "cli", Action: "account.create", Object: "account:ann@example.com"})
	})
	if n, err := s.AuthCountAccounts(ctx); err != nil || n != 2 {
		t.Errorf("AuthCountAccounts = %d, %v; want 2", n, err)
	}
	all, err := s.AuthAccounts(ctx)
	if err != nil || len(all) != 2 || all[0].Email != "ann@example.com" || all[1].Email != "bob@example.com" {
		t.Fatalf("AuthAccounts = %+v, %v; want ann, bob by email", all, err)
	}
	if b := all[1]; b.Role != auth.Officer || !slices.Equal(b.Policies, []string{"p", "q"}) || b.Name != "Bob" || !b.CreatedAt.Equal(base) || !b.LastLogin.IsZero() {
		t.Errorf("bob = %+v", b)
	}
	if all[0].Policies != nil {
		t.Errorf("ann's policies = %#v, want nil", all[0].Policies)
	}
	c, err := s.AuthCredentials(ctx, "ann@example.com")
	if err != nil || c.ID != ann.ID || c.PasswordHash != "hash-a" || c.TOTPSecret != "SECRETA" || c.TOTPStep != 5 || !c.LockedUntil.IsZero() {
		t.Errorf("AuthCredentials(ann) = %+v, %v", c, err)
	}
	if _, err := s.AuthCredentials(ctx, "nobody@example.com"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("AuthCredentials(nobody) = %v, want ErrNotFound", err)
	}
	if a, err := s.AuthAccount(ctx, bob.ID); err != nil || a.Email != "bob@example.com" {
		t.Errorf("AuthAccount(bob) = %+v, %v", a, err)
	}

	// Logins: a TOTP step is accepted once, never an older one, and never
	// while the account is locked.
	accept := func(step int64, now time.Time) bool {
		var ok bool
		authTx(t, s, func(tx auth.Tx) error {
			var err error
			ok, err = tx.AcceptLogin(ann.ID, step, now)
			return err
		})
		return ok
	}
	if !accept(6, base) || accept(6, base) || accept(4, base) {
		t.Error("AcceptLogin: want step 6 once, and no older step")
	}
	authTx(t, s, func(tx auth.Tx) error {
		for i := range 3 {
			n, err := tx.AddFailure(ann.ID, base.Add(time.Duration(i)*time.Minute), base.Add(-time.Second))
			if err != nil || n != i+1 {
				t.Errorf("AddFailure #%d = %d, %v", i+1, n, err)
			}
		}
		return tx.Lock(ann.ID, base.Add(time.Hour))
	})
	if accept(7, base.Add(time.Minute)) {
		t.Error("AcceptLogin while locked succeeded")
	}
	if !accept(7, base.Add(time.Hour)) {
		t.Error("AcceptLogin at the end of the lock failed")
	}
	if c, _ := s.AuthCredentials(ctx, "ann@example.com"); c.TOTPStep != 7 || !c.LastLogin.Equal(base.Add(time.Hour)) || !c.LockedUntil.Equal(base.Add(time.Hour)) {
		t.Errorf("after logins: %+v", c)
	}
	authTx(t, s, func(tx auth.Tx) error {
		if err := tx.ClearFailures(ann.ID); err != nil {
			return err
		}
		n, err := tx.AddFailure(ann.ID, base, base.Add(-time.Second))
		if n != 1 {
			t.Errorf("failures after ClearFailures = %d, want 1", n)
		}
		all, admins, err2 := tx.CountAccounts()
		if all != 2 || admins != 1 {
			t.Errorf("CountAccounts = %d, %d; want 2, 1", all, admins)
		}
		return errors.Join(err, err2)
	})

	// Join tokens are used once, before they expire.
	h := spki("join")
	authTx(t, s, func(tx auth.Tx) error {
		if err := tx.InsertJoinToken(&auth.JoinToken{Hash: h, Email: "cy@example.com", Role: auth.Officer, Policies: []string{"p"},
			CreatedBy: "cli", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
			return err
		}
		return tx.InsertJoinToken(&auth.JoinToken{Hash: spki("setup"), Role: auth.Administrator, Setup: true, CreatedBy: "cli", CreatedAt: base, ExpiresAt: base.Add(time.Hour)})
	})
	j, err := s.AuthJoinToken(ctx, h)
	if err != nil || j.Email != "cy@example.com" || j.Role != auth.Officer || !slices.Equal(j.Policies, []string{"p"}) || j.Setup || !j.UsedAt.IsZero() || !j.ExpiresAt.Equal(base.Add(time.Hour)) {
		t.Errorf("AuthJoinToken = %+v, %v", j, err)
	}
	if j, _ := s.AuthJoinToken(ctx, spki("setup")); j == nil || !j.Setup {
		t.Errorf("setup token = %+v", j)
	}
	authTx(t, s, func(tx auth.Tx) error {
		if _, err := tx.UseJoinToken(h, base.Add(time.Hour)); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("UseJoinToken at its expiry = %v, want ErrNotFound", err)
		}
		if j, err := tx.UseJoinToken(h, base); err != nil || j.Email != "cy@example.com" || !j.UsedAt.Equal(base) {
			t.Errorf("UseJoinToken = %+v, %v", j, err)
		}
		if _, err := tx.UseJoinToken(h, base); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("UseJoinToken twice = %v, want ErrNotFound", err)
		}
		if n, err := tx.DeleteUnusedJoinTokens(true, ""); err != nil || n != 1 {
			t.Errorf("DeleteUnusedJoinTokens(setup) = %d, %v; want 1", n, err)
		}
		return nil
	})
	if _, err := s.AuthJoinToken(ctx, spki("setup")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("setup token after DeleteUnusedJoinTokens = %v, want ErrNotFound", err)
	}
	if _, err := s.AuthJoinToken(ctx, h); err != nil {
		t.Errorf("used token after DeleteUnusedJoinTokens = %v, want it kept", err)
	}
	// Unused invitations: listed, deleted by their creator or by id.
	authTx(t, s, func(tx auth.Tx) error {
		for _, e := range []string{"dee@example.com", "eve@example.com", "fay@example.com"} {
			if err := tx.InsertJoinToken(&auth.JoinToken{Hash: spki(e), Email: e, Role: auth.Officer, Policies: []string{auth.AllPolicies},
				CreatedBy: "console:" + e[:3], CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	inv, err := s.AuthInvitations(ctx)
	if err != nil || len(inv) != 3 || inv[0].Email != "dee@example.com" || inv[0].ID == 0 || inv[0].CreatedBy != "console:dee" ||
		!slices.Equal(inv[0].Policies, []string{auth.AllPolicies}) || !inv[2].ExpiresAt.Equal(base.Add(time.Hour)) {
		t.Errorf("AuthInvitations = %+v, %v; want dee, eve, fay (not the used or setup tokens)", inv, err)
	}
	if len(inv) == 3 {
		authTx(t, s, func(tx auth.Tx) error {
			if n, err := tx.DeleteJoinTokensBy("console:dee"); err != nil || n != 1 {
				t.Errorf("DeleteJoinTokensBy = %d, %v; want 1", n, err)
			}
			if j, err := tx.DeleteInvitation(inv[1].ID); err != nil || j.Email != "eve@example.com" {
				t.Errorf("DeleteInvitation = %+v, %v; want eve's", j, err)
			}
			if _, err := tx.DeleteInvitation(inv[1].ID); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("DeleteInvitation twice = %v, want ErrNotFound", err)
			}
			if n, err := tx.DeleteUnusedJoinTokens(false, "fay@example.com"); err != nil || n != 1 {
				t.Errorf("DeleteUnusedJoinTokens(fay) = %d, %v; want 1", n, err)
			}
			return nil
		})
		if inv, err := s.AuthInvitations(ctx); err != nil || len(inv) != 0 {
			t.Errorf("AuthInvitations after deleting = %+v, %v; want none", inv, err)
		}
	}
	// Lock with the zero time unlocks.
	authTx(t, s, func(tx auth.Tx) error { return tx.Lock(ann.ID, time.Time{}) })
	if a, err := s.AuthAccount(ctx, ann.ID); err != nil || !a.LockedUntil.IsZero() {
		t.Errorf("account after Lock(zero) = %+v, %v; want unlocked", a, err)
	}
	authTx(t, s, func(tx auth.Tx) error { return tx.Lock(ann.ID, base.Add(time.Hour)) })

	// Sessions.
	sess := &auth.SessionRecord{AccountID: bob.ID, CreatedAt: base, LastSeen: base}
	authTx(t, s, func(tx auth.Tx) error { return tx.InsertSession(sess, spki("session")) })
	authTx(t, s, func(tx auth.Tx) error { return tx.TouchSession(sess.ID, base.Add(time.Minute)) })
	authTx(t, s, func(tx auth.Tx) error { return tx.TouchSession(sess.ID, base) }) // never goes back
	rec, acc, err := s.AuthSession(ctx, spki("session"))
	if err != nil || rec.ID != sess.ID || rec.AccountID != bob.ID || !rec.LastSeen.Equal(base.Add(time.Minute)) || !rec.EndedAt.IsZero() || acc.Email != "bob@example.com" {
		t.Errorf("AuthSession = %+v, %+v, %v", rec, acc, err)
	}
	authTx(t, s, func(tx auth.Tx) error {
		if err := tx.SetRole(bob.ID, auth.Auditor, nil); err != nil {
			return err
		}
		if err := tx.SetRole(bob.ID+ann.ID+100, auth.Auditor, nil); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("SetRole(missing) = %v, want ErrNotFound", err)
		}
		ended, err := tx.EndSession(spki("session"), base.Add(2*time.Minute))
		if err != nil || ended.ID != sess.ID || !ended.EndedAt.Equal(base.Add(2*time.Minute)) {
			t.Errorf("EndSession = %+v, %v", ended, err)
		}
		if _, err := tx.EndSession(spki("session"), base); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("EndSession twice = %v, want ErrNotFound", err)
		}
		if n, err := tx.EndSessions(bob.ID, base); err != nil || n != 0 {
			t.Errorf("EndSessions = %d, %v; want 0", n, err)
		}
		return tx.PurgeSessions(bob.ID, base.Add(time.Hour))
	})
	if _, _, err := s.AuthSession(ctx, spki("session")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("AuthSession after PurgeSessions = %v, want ErrNotFound", err)
	}
	if a, _ := s.AuthAccount(ctx, bob.ID); a.Role != auth.Auditor || a.Policies != nil {
		t.Errorf("bob after SetRole = %+v", a)
	}
	// Deleting an account deletes its sessions.
	sess2 := &auth.SessionRecord{AccountID: bob.ID, CreatedAt: base, LastSeen: base}
	authTx(t, s, func(tx auth.Tx) error { return tx.InsertSession(sess2, spki("session2")) })
	authTx(t, s, func(tx auth.Tx) error { return tx.DeleteAccount(bob.ID) })
	if _, _, err := s.AuthSession(ctx, spki("session2")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("AuthSession of a deleted account = %v, want ErrNotFound", err)
	}
	var v auditCount
	if err := s.AuditEvents(ctx, v.add); err != nil || v.n != 1 {
		t.Errorf("audit events = %d, %v; want the one AuthTx appended", v.n, err)
	}
}

type auditCount struct{ n int }

func (c *auditCount) add(audit.Record) error { c.n++; return nil }

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := &apikey.Key{ID: "k1", Name: "crm", Hash: spki("secret"), Scopes: []apikey.Scope{apikey.InvitationsRead, apikey.InvitationsWrite},
		Policies: []string{"p"}, CreatedBy: "cli", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	ev := enrol.Event{Actor: "cli", Action: "apikey.create", Object: "apikey:crm"}
	if err := s.InsertAPIKey(ctx, k, ev); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []*apikey.Key{{ID: "k2", Name: "crm", Hash: spki("2"), CreatedAt: base}, {ID: "k1", Name: "other", Hash: spki("3"), CreatedAt: base}} {
		if err := s.InsertAPIKey(ctx, dup, ev); !errors.Is(err, apikey.ErrDuplicate) {
			t.Errorf("InsertAPIKey(%s, %s) = %v, want ErrDuplicate", dup.ID, dup.Name, err)
		}
	}
	if err := s.InsertAPIKey(ctx, &apikey.Key{ID: "k0", Name: "billing", Hash: spki("4"), Scopes: []apikey.Scope{apikey.CertificatesRead}, CreatedBy: "cli", CreatedAt: base}, ev); err != nil {
		t.Fatal(err)
	}
	got, err := s.APIKey(ctx, "k1")
	if err != nil || got.Name != "crm" || !slices.Equal(got.Scopes, k.Scopes) || !slices.Equal(got.Policies, []string{"p"}) || !got.ExpiresAt.Equal(base.Add(time.Hour)) || !got.RevokedAt.IsZero() {
		t.Errorf("APIKey(k1) = %+v, %v", got, err)
	}
	if _, err := s.APIKey(ctx, "nonesuch"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("APIKey(nonesuch) = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAPIKey(ctx, "crm", base.Add(time.Minute), ev); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, "crm", base.Add(time.Minute), ev); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("RevokeAPIKey twice = %v, want ErrNotFound", err)
	}
	keys, err := s.APIKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].Name != "billing" || keys[1].Name != "crm" || !keys[1].RevokedAt.Equal(base.Add(time.Minute)) || keys[0].Policies != nil || !keys[0].ExpiresAt.IsZero() {
		t.Errorf("APIKeys = %+v, %v", keys, err)
	}
	var v auditCount
	if err := s.AuditEvents(ctx, v.add); err != nil || v.n != 3 {
		t.Errorf("audit events = %d, %v; want 3 (two keys made, one revoked)", v.n, err)
	}
}

// issueFor issues serial for an enrolment under policy and returns it.
func issueFor(t *testing.T, s store.Store, serial, policy, mailbox, surname string, notAfter time.Time) *enrol.Enrolment {
	t.Helper()
	issue(t, s, serial, "iss", mailbox, notAfter)
	e := newEnrolment(policy, mailbox)
	e.Surname = surname
	insert(t, s, e)
	e = mustEnrolment(t, s, e.ID)
	next := *e
	next.State, next.Serial, next.IssuedAt = enrol.Issued, serial, base
	inTx(t, s, func(tx enrol.Tx) error {
		if err := tx.Transition(e.ID, e.State, e.Rev, &next); err != nil {
			return err
		}
		return tx.Audit(enrol.Event{Actor: "system", Action: "certificate.issue", Object: fmt.Sprint("enrolment:", e.ID), Detail: serial})
	})
	return mustEnrolment(t, s, e.ID)
}

func testWebhooks(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	writeEvents(t, s, enrol.Event{Actor: "cli", Action: "batch.start", Object: "batch:1"})
	ev := enrol.Event{Actor: "cli", Action: "webhook.add"}
	e := &webhook.Endpoint{Policy: "p", URL: "https://hooks.example.com/x", Secret: "mwh_secret", CreatedBy: "cli", CreatedAt: base}
	if err := s.InsertWebhook(ctx, e, ev); err != nil {
		t.Fatal(err)
	}
	if e.ID == 0 || e.Cursor != 1 {
		t.Errorf("InsertWebhook set ID %d, cursor %d; want the cursor at the end of the chain, 1", e.ID, e.Cursor)
	}
	eps, err := s.Webhooks(ctx)
	if err != nil || len(eps) != 1 || eps[0].Secret != "mwh_secret" || eps[0].URL != e.URL || eps[0].Cursor != 1 || !eps[0].CreatedAt.Equal(base) {
		t.Errorf("Webhooks = %+v, %v", eps, err)
	}
	// Events: a submission by enrolment, a revocation by certificate, and
	// actions webhooks ignore.
	a := issueFor(t, s, "c1", "p", "a@example.com", "A", base.Add(time.Hour))
	inTx(t, s, func(tx enrol.Tx) error {
		return tx.AuditAll([]enrol.Event{
			{Actor: "user:a", Action: "enrolment.submit", Object: fmt.Sprint("enrolment:", a.ID)},
			{Actor: "cli", Action: "enrolment.note", Object: fmt.Sprint("enrolment:", a.ID)},
			{Actor: "cli", Action: "certificate.revoke", Object: "certificate:c1"},
			{Actor: "cli", Action: "certificate.revoke", Object: "certificate:unknown"},
		})
	})
	evs, head, err := s.WebhookEvents(ctx, e.Cursor, 10)
	if err != nil || len(evs) != 3 || head != 7 {
		t.Fatalf("WebhookEvents = %+v, %d, %v; want 3 events, head 7", evs, head, err)
	}
	for i, want := range []string{"certificate.issue", "enrolment.submit", "certificate.revoke"} {
		if evs[i].Action != want || evs[i].Enrolment == nil || evs[i].Enrolment.ID != a.ID {
			t.Errorf("event %d = %+v, want %s of enrolment %d", i, evs[i], want, a.ID)
		}
	}
	if evs2, head2, _ := s.WebhookEvents(ctx, e.Cursor, 2); len(evs2) != 2 || head2 != evs2[1].Seq {
		t.Errorf("WebhookEvents(limit 2) = %d events, head %d; want the second's seq", len(evs2), head2)
	}
	ds := []webhook.Delivery{{Seq: evs[0].Seq, Type: "enrolment.issued", Body: []byte(`{"a":1}`)}, {Seq: evs[1].Seq, Type: "enrolment.submitted", Body: []byte(`{}`)}}
	if err := s.QueueDeliveries(ctx, e.ID, 1, head, ds, base); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueDeliveries(ctx, e.ID, 1, head, ds, base); !errors.Is(err, webhook.ErrStale) {
		t.Errorf("QueueDeliveries from a moved cursor = %v, want ErrStale", err)
	}
	// Queueing the same events again (after a crash between the scan and
	// the cursor) adds nothing.
	if err := s.QueueDeliveries(ctx, e.ID, head, head, ds, base); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimWebhookDeliveries(ctx, base, 10, time.Minute)
	if err != nil || len(got) != 2 {
		t.Fatalf("ClaimWebhookDeliveries = %+v, %v; want 2", got, err)
	}
	slices.SortFunc(got, func(a, b webhook.Delivery) int { return int(a.Seq - b.Seq) })
	if d := got[0]; d.Type != "enrolment.issued" || string(d.Body) != `{"a":1}` || d.URL != e.URL || d.Secret != "mwh_secret" || d.EndpointID != e.ID || d.Attempts != 0 {
		t.Errorf("claimed %+v", d)
	}
	if more, _ := s.ClaimWebhookDeliveries(ctx, base.Add(30*time.Second), 10, time.Minute); len(more) != 0 {
		t.Errorf("claimed %d during the lease", len(more))
	}
	if err := s.MarkWebhookDelivered(ctx, got[0].ID, base); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkWebhookRetry(ctx, got[1].ID, base.Add(time.Hour), "503"); err != nil {
		t.Fatal(err)
	}
	if more, _ := s.ClaimWebhookDeliveries(ctx, base.Add(2*time.Minute), 10, time.Minute); len(more) != 0 {
		t.Errorf("claimed %+v before the retry is due", more)
	}
	more, _ := s.ClaimWebhookDeliveries(ctx, base.Add(time.Hour), 10, time.Minute)
	if len(more) != 1 || more[0].Attempts != 1 {
		t.Fatalf("claimed %+v at the retry", more)
	}
	if err := s.MarkWebhookFailed(ctx, more[0].ID, "410"); err != nil {
		t.Fatal(err)
	}
	list, err := s.WebhookDeliveries(ctx, 10)
	if err != nil || len(list) != 2 || list[0].State != "failed" || list[0].LastError != "410" || list[0].Attempts != 2 || list[1].State != "delivered" {
		t.Errorf("WebhookDeliveries = %+v, %v", list, err)
	}
	// A removed endpoint gets nothing more.
	if err := s.QueueDeliveries(ctx, e.ID, head, head+1, []webhook.Delivery{{Seq: head + 1, Type: "x", Body: []byte("{}")}}, base); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveWebhook(ctx, e.ID, base, ev); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveWebhook(ctx, e.ID, base, ev); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("RemoveWebhook twice = %v, want ErrNotFound", err)
	}
	if more, _ := s.ClaimWebhookDeliveries(ctx, base.Add(2*time.Hour), 10, time.Minute); len(more) != 0 {
		t.Errorf("claimed %+v for a removed endpoint", more)
	}
	if eps, _ := s.Webhooks(ctx); len(eps) != 0 {
		t.Errorf("Webhooks after removal = %+v", eps)
	}
}

// testWebhookClaimRace has several dispatchers claim at once: each
// delivery goes to one.
func testWebhookClaimRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	e := &webhook.Endpoint{Policy: "p", URL: "https://x", Secret: "s", CreatedBy: "cli", CreatedAt: base}
	if err := s.InsertWebhook(ctx, e, enrol.Event{Actor: "cli", Action: "webhook.add"}); err != nil {
		t.Fatal(err)
	}
	var ds []webhook.Delivery
	for i := range 40 {
		ds = append(ds, webhook.Delivery{Seq: int64(i + 10), Type: "t", Body: []byte("{}")})
	}
	if err := s.QueueDeliveries(ctx, e.ID, e.Cursor, 50, ds, base); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]int{}
	)
	for range 4 {
		wg.Go(func() {
			for {
				got, err := s.ClaimWebhookDeliveries(ctx, base, 3, time.Hour)
				if err != nil {
					t.Errorf("ClaimWebhookDeliveries: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("%d deliveries claimed, want 40", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %d claimed %d times", id, n)
		}
	}
}

func testAPIQueries(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "p")
	savePolicy(t, s, "q")
	a := issueFor(t, s, "0a", "p", "a@example.com", "A", base.Add(time.Hour))
	issueFor(t, s, "0b", "q", "b@example.com", "B", base.Add(3*time.Hour))
	issue(t, s, "0c", "iss", "c@example.com", base.Add(2*time.Hour)) // outside enrolment
	issueFor(t, s, "0d", "q", "a@example.com", "A", base.Add(4*time.Hour))
	reserve(t, s, "0e", "iss", "e@example.com", base.Add(time.Hour), "") // never issued
	if _, _, err := revoke(s, "0b", ca.ReasonSuperseded, base); err != nil {
		t.Fatal(err)
	}
	if err := s.Audit(ctx, enrol.Event{Actor: "api:crm", Action: "referral.mint", Object: "referral:x"}); err != nil {
		t.Fatal(err)
	}
	serials := func(cs []api.CertificateInfo) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Serial)
		}
		return out
	}
	now := base.Add(90 * time.Minute)
	tests := []struct {
		name string
		q    api.CertificateQuery
		want []string
	}{
		{"all", api.CertificateQuery{}, []string{"0d", "0c", "0b", "0a"}},
		{"mailbox", api.CertificateQuery{Mailbox: "a@example.com"}, []string{"0d", "0a"}},
		{"serial", api.CertificateQuery{Serial: "0c"}, []string{"0c"}},
		{"policies", api.CertificateQuery{Policies: []string{"q", "p"}}, []string{"0d", "0b", "0a"}},
		{"valid", api.CertificateQuery{State: "valid", Now: now}, []string{"0d", "0c"}},
		{"revoked", api.CertificateQuery{State: "revoked", Now: now}, []string{"0b"}},
		{"expired", api.CertificateQuery{State: "expired", Now: now}, []string{"0a"}},
		{"limit", api.CertificateQuery{Limit: 2}, []string{"0d", "0c"}},
	}
	for _, tt := range tests {
		got, err := s.Certificates(ctx, tt.q)
		if err != nil || !slices.Equal(serials(got), tt.want) {
			t.Errorf("%s: Certificates(%+v) = %v, %v; want %v", tt.name, tt.q, serials(got), err, tt.want)
		}
	}
	// Paging by cursor.
	var paged []string
	q := api.CertificateQuery{Limit: 3}
	for {
		page, err := s.Certificates(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, serials(page)...)
		q.Before = page[len(page)-1].Cursor
	}
	if !slices.Equal(paged, []string{"0d", "0c", "0b", "0a"}) {
		t.Errorf("paged certificates %v", paged)
	}
	c, err := s.IssuedCertificate(ctx, "0b")
	if err != nil || c.Serial != "0b" || c.Policy != "q" || c.Mailbox != "b@example.com" || c.Reason == "" || !c.RevokedAt.Equal(base) ||
		string(c.DER) != "der-0b" || !c.NotAfter.Equal(base.Add(3*time.Hour)) || c.EnrolmentID == 0 {
		t.Errorf("IssuedCertificate(0b) = %+v, %v", c, err)
	}
	if c, err := s.IssuedCertificate(ctx, "0c"); err != nil || c.EnrolmentID != 0 || c.Policy != "" || c.Reason != "" {
		t.Errorf("IssuedCertificate(0c) = %+v, %v", c, err)
	}
	for _, serial := range []string{"0e", "ff"} {
		if _, err := s.IssuedCertificate(ctx, serial); err == nil {
			t.Errorf("IssuedCertificate(%s) succeeded", serial)
		}
	}
	// Audit reads.
	evs, err := s.EventsAfter(ctx, 1, 2)
	if err != nil || len(evs) != 2 || evs[0].Seq != 2 || evs[1].Seq != 3 {
		t.Errorf("EventsAfter(1, 2) = %v, %v", seqsOf(evs), err)
	}
	obj, err := s.ObjectEvents(ctx, []string{fmt.Sprint("enrolment:", a.ID), "referral:x", "nothing"}, 10)
	if err != nil || len(obj) != 2 || obj[0].Object != fmt.Sprint("enrolment:", a.ID) || obj[1].Action != "referral.mint" {
		t.Errorf("ObjectEvents = %+v, %v", obj, err)
	}
	if obj, err := s.ObjectEvents(ctx, nil, 10); err != nil || len(obj) != 0 {
		t.Errorf("ObjectEvents(none) = %v, %v", obj, err)
	}
	hist, err := s.EnrolmentHistory(ctx, a.ID)
	if err != nil || len(hist) != 1 || hist[0].Action != "certificate.issue" {
		t.Errorf("EnrolmentHistory = %+v, %v", hist, err)
	}
}

func testConsoleLists(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, p := range []string{"p", "q", "r"} {
		savePolicy(t, s, p)
	}
	// Enrolments: names and mailboxes to search, in three policies.
	type person struct{ policy, mailbox, given, surname string }
	people := []person{
		{"p", "anna@example.com", "Anna", "Smith"},
		{"q", "ben@example.com", "Ben", "smithers"},
		{"p", "cleo@example.org", "Cleo", "Jones"},
		{"r", "dan@example.com", "Dan", "Smith"},
		{"q", "anne@example.net", "Anne", "Zoë"},
		{"p", "annabel@example.com", "Annabel", "SMITH"},
	}
	var es []*enrol.Enrolment
	for _, p := range people {
		e := newEnrolment(p.policy, p.mailbox)
		e.GivenName, e.Surname = p.given, p.surname
		es = append(es, e)
	}
	insert(t, s, es...)
	id := func(i int) int64 { return es[i].ID }
	for _, i := range []int{2, 3} {
		if err := transition(s, mustEnrolment(t, s, id(i)), enrol.Submitted); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    store.EnrolmentQuery
		want []int64
	}{
		{"newest first", store.EnrolmentQuery{}, []int64{id(5), id(4), id(3), id(2), id(1), id(0)}},
		{"state", store.EnrolmentQuery{State: enrol.Submitted}, []int64{id(3), id(2)}},
		{"one policy", store.EnrolmentQuery{Policies: []string{"p"}}, []int64{id(5), id(2), id(0)}},
		{"two policies merged", store.EnrolmentQuery{Policies: []string{"r", "q", "r"}}, []int64{id(4), id(3), id(1)}},
		{"two policies, limit", store.EnrolmentQuery{Policies: []string{"p", "q"}, Limit: 3}, []int64{id(5), id(4), id(2)}},
		{"after", store.EnrolmentQuery{After: id(3), Limit: 2}, []int64{id(2), id(1)}},
		{"mailbox prefix, in key order", store.EnrolmentQuery{Mailbox: "ann"}, []int64{id(0), id(5), id(4)}},
		{"mailbox prefix after", store.EnrolmentQuery{Mailbox: "ann", After: id(0)}, []int64{id(5), id(4)}},
		{"mailbox prefix and policies", store.EnrolmentQuery{Mailbox: "ann", Policies: []string{"q", "r"}}, []int64{id(4)}},
		{"surname, any case, in surname order", store.EnrolmentQuery{Surname: "SMITH"}, []int64{id(0), id(3), id(5), id(1)}},
		{"surname and given name", store.EnrolmentQuery{Surname: "smith", GivenName: "ann"}, []int64{id(0), id(5)}},
		{"surname after", store.EnrolmentQuery{Surname: "smith", After: id(3)}, []int64{id(5), id(1)}},
		{"surname with a non-ASCII letter", store.EnrolmentQuery{Surname: "zo"}, []int64{id(4)}},
		{"surname ending in a non-ASCII letter", store.EnrolmentQuery{Surname: "zoë"}, []int64{id(4)}},
		{"state and policy", store.EnrolmentQuery{State: enrol.Invited, Policies: []string{"p"}}, []int64{id(5), id(0)}},
	}
	for _, tt := range tests {
		got, err := s.ListEnrolments(ctx, tt.q)
		if err != nil || !slices.Equal(ids(got), tt.want) {
			t.Errorf("%s: ListEnrolments(%+v) = %v, %v; want %v", tt.name, tt.q, ids(got), err, tt.want)
		}
	}

	// The approval queue, oldest submission first, with approvers.
	inTx(t, s, func(tx enrol.Tx) error { _, err := tx.AddApprover(id(3), "ann", base); return err })
	queue, err := s.ListApplications(ctx, store.QueueQuery{})
	if err != nil || !slices.Equal(ids(queue), []int64{id(2), id(3)}) || !slices.Equal(queue[1].Approvers, []string{"ann"}) {
		t.Errorf("ListApplications = %v, %v", ids(queue), err)
	}
	if q, _ := s.ListApplications(ctx, store.QueueQuery{Policies: []string{"r"}}); !slices.Equal(ids(q), []int64{id(3)}) {
		t.Errorf("ListApplications(r) = %v", ids(q))
	}
	if q, _ := s.ListApplications(ctx, store.QueueQuery{Policies: []string{"r", "p"}, After: id(2)}); !slices.Equal(ids(q), []int64{id(3)}) {
		t.Errorf("ListApplications(r, p, after) = %v", ids(q))
	}
	counts, err := s.ConsolePolicyCounts(ctx)
	if err != nil || counts["p"]["invited"] != 2 || counts["p"]["submitted"] != 1 || counts["r"]["submitted"] != 1 || counts["q"]["invited"] != 2 {
		t.Errorf("ConsolePolicyCounts = %v, %v", counts, err)
	}

	// Certificates.
	savePolicy(t, s, "c")
	issueFor(t, s, "1a", "c", "x@example.com", "Xu", base.Add(time.Hour))
	issueFor(t, s, "1b", "c", "y@example.com", "young", base.Add(time.Hour))
	issue(t, s, "2a", "iss", "x@example.com", base.Add(time.Hour))
	issueFor(t, s, "1c", "p", "x@example.com", "xu", base.Add(time.Hour))
	serials := func(rs []store.CertificateRow) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Serial)
		}
		return out
	}
	ctests := []struct {
		name string
		q    store.CertificateQuery
		want []string
	}{
		{"newest first", store.CertificateQuery{}, []string{"1c", "2a", "1b", "1a"}},
		{"after", store.CertificateQuery{After: "2a"}, []string{"1b", "1a"}},
		{"policies", store.CertificateQuery{Policies: []string{"c"}}, []string{"1b", "1a"}},
		{"serial prefix", store.CertificateQuery{Serial: "1"}, []string{"1a", "1b", "1c"}},
		{"serial prefix after", store.CertificateQuery{Serial: "1", After: "1a"}, []string{"1b", "1c"}},
		{"mailbox prefix", store.CertificateQuery{Mailbox: "x@"}, []string{"1a", "2a", "1c"}},
		{"mailbox prefix after", store.CertificateQuery{Mailbox: "x@", After: "1a", Limit: 1}, []string{"2a"}},
		{"surname", store.CertificateQuery{Surname: "XU"}, []string{"1a", "1c"}},
		{"surname after", store.CertificateQuery{Surname: "xu", After: "1a"}, []string{"1c"}},
		{"surname and policy", store.CertificateQuery{Surname: "y", Policies: []string{"c"}}, []string{"1b"}},
	}
	for _, tt := range ctests {
		got, err := s.ListCertificates(ctx, tt.q)
		if err != nil || !slices.Equal(serials(got), tt.want) {
			t.Errorf("%s: ListCertificates(%+v) = %v, %v; want %v", tt.name, tt.q, serials(got), err, tt.want)
		}
	}
	row, err := s.CertificateRow(ctx, "1b")
	if err != nil || row.Policy != "c" || row.Surname != "young" || row.GivenName != "Given" || string(row.DER) != "der-1b" || row.IssuerID != "iss" || row.EnrolmentID == 0 {
		t.Errorf("CertificateRow(1b) = %+v, %v", row, err)
	}
	if _, err := s.CertificateRow(ctx, "99"); !errors.Is(err, enrol.ErrNotFound) {
		t.Errorf("CertificateRow(99) = %v, want ErrNotFound", err)
	}

	// Validations.
	inTx(t, s, func(tx enrol.Tx) error {
		return tx.RecordValidation(enrol.Validation{EnrolmentID: id(0), Mailbox: "anna@example.com", Method: "activation-link", BRVersion: "1.0.8", At: base})
	})
	vs, err := s.EnrolmentValidations(ctx, id(0))
	if err != nil || len(vs) != 1 || vs[0].Method != "activation-link" || !vs[0].At.Equal(base) {
		t.Errorf("EnrolmentValidations = %+v, %v", vs, err)
	}
}

func testConsoleBatches(t *testing.T, s store.Store) {
	ctx := context.Background()
	var bs []enrol.Batch
	for _, actor := range []string{"admin:ann", "admin:bob", "admin:ann"} {
		b := enrol.Batch{Policy: "p", Filename: "f.csv", Actor: actor, State: "importing", CreatedAt: base}
		inTx(t, s, func(tx enrol.Tx) error { return tx.InsertBatch(&b) })
		bs = append(bs, b)
	}
	recent, err := s.RecentBatches(ctx, 2)
	if err != nil || len(recent) != 2 || recent[0].ID != bs[2].ID || recent[1].ID != bs[1].ID || recent[0].Actor != "admin:ann" {
		t.Errorf("RecentBatches = %+v, %v", recent, err)
	}
	var rows []store.BatchRow
	for i := range 1200 {
		r := store.BatchRow{Line: i + 2, Email: fmt.Sprint("u", i, "@example.com"), Invited: i%3 != 0}
		if r.Invited {
			r.EnrolmentID = int64(i + 1)
		} else {
			r.Reason, r.Detail = "invalid mailbox", "x"
		}
		rows = append(rows, r)
	}
	// The report is written with its chunks, in their transactions.
	for chunk := range slices.Chunk(rows, 500) {
		inTx(t, s, func(tx enrol.Tx) error { return tx.InsertBatchRows(bs[0].ID, rowResults(chunk)) })
	}
	inTx(t, s, func(tx enrol.Tx) error { return tx.InsertBatchRows(bs[0].ID, nil) })
	// A chunk that rolls back leaves no report line.
	rollback := errors.New("rollback")
	err = s.InTx(ctx, func(tx enrol.Tx) error {
		if err := tx.InsertBatchRows(bs[1].ID, rowResults(rows[:3])); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("InTx = %v, want the rollback", err)
	}
	if got, err := s.BatchRows(ctx, bs[1].ID, 0, false, 10); err != nil || len(got) != 0 {
		t.Errorf("BatchRows after a rollback = %+v, %v; want none", got, err)
	}
	page, err := s.BatchRows(ctx, bs[0].ID, 3, false, 3)
	if err != nil || len(page) != 3 || page[0] != rows[2] || page[2] != rows[4] {
		t.Errorf("BatchRows(after line 3) = %+v, %v", page, err)
	}
	refused, _ := s.BatchRows(ctx, bs[0].ID, 0, true, 1000)
	if len(refused) != 400 || refused[1] != rows[3] {
		t.Errorf("BatchRows(refused) = %d rows, want 400", len(refused))
	}
	n := 0
	stop := errors.New("stop")
	err = s.ScanBatchRows(ctx, bs[0].ID, func(r store.BatchRow) error {
		if r != rows[n] {
			t.Fatalf("row %d = %+v, want %+v", n, r, rows[n])
		}
		if n++; n == 1100 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 1100 {
		t.Errorf("ScanBatchRows = %d rows, %v", n, err)
	}
}

func testConsoleWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.ConsoleAudit(ctx, "console:ann", "audit.export", "audit", "csv"); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsoleEnqueueTest(ctx, "console:ann", "ops@example.com", "<t@storetest>"); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.Messages(ctx, outbox.Filter{To: "ops@example.com"})
	if err != nil || len(msgs) != 1 || msgs[0].MessageID != "<t@storetest>" || msgs[0].Data["Actor"] != "console:ann" {
		t.Errorf("test message = %+v, %v", msgs, err)
	}
	rs, err := s.AuditFilter(ctx, store.AuditQuery{})
	if err != nil || len(rs) != 2 || rs[0].Action != "mail.test" || rs[1].Action != "audit.export" || !strings.HasPrefix(rs[0].Object, "mail:") {
		t.Errorf("audit = %+v, %v", rs, err)
	}
}

// rowResults returns rs as the enrol report lines InsertBatchRows takes.
func rowResults(rs []store.BatchRow) []enrol.RowResult {
	out := make([]enrol.RowResult, len(rs))
	for i, r := range rs {
		out[i] = enrol.RowResult{Line: r.Line, Email: r.Email, Invited: r.Invited, EnrolmentID: r.EnrolmentID, Reason: r.Reason, Detail: r.Detail}
	}
	return out
}
