package sqlite_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// TestFoldNames checks migration 0010's Go step: rows whose name keys are
// lower() of their names, as the migration's SQL leaves the rows of an
// older version, get keys that find non-ASCII names in any case.
func TestFoldNames(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SavePolicy(ctx, "p", "{}", "test"); err != nil {
		t.Fatal(err)
	}
	names := [][2]string{{"Åsa", "Ödegaard"}, {"Ann", "Smith"}, {"Émile", "Zola"}}
	var ids []int64
	err = db.InTx(ctx, func(tx enrol.Tx) error {
		for i, n := range names {
			m := string(rune('a'+i)) + "@example.org"
			e := &enrol.Enrolment{Policy: "p", PolicyVersion: 1, State: enrol.Invited, Channel: enrol.ViaInvitation, Mailbox: m, MailboxKey: m,
				GivenName: n[0], Surname: n[1], CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(1, 0)}
			if err := tx.InsertEnrolment(e); err != nil {
				return err
			}
			ids = append(ids, e.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Exec(ctx, db, `UPDATE enrolments SET surname_key = lower(surname), given_name_key = lower(given_name)`); err != nil {
		t.Fatal(err)
	}
	find := func(q store.EnrolmentQuery) []int64 {
		t.Helper()
		es, err := db.ListEnrolments(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	if got := find(store.EnrolmentQuery{Surname: "ödegaard"}); got != nil {
		t.Fatalf("before folding, ödegaard finds %v: the test does not set up what it means to", got)
	}
	if err := sqlite.FoldNames(ctx, db); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    store.EnrolmentQuery
		want []int64
	}{
		{store.EnrolmentQuery{Surname: "ödegaard", GivenName: "åsa"}, ids[:1]},
		{store.EnrolmentQuery{Surname: "ÖDEGAARD"}, ids[:1]},
		{store.EnrolmentQuery{Surname: "smith", GivenName: "ANN"}, ids[1:2]},
		{store.EnrolmentQuery{Surname: "Zola", GivenName: "émile"}, ids[2:]},
	}
	for _, tt := range tests {
		if got := find(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("ListEnrolments(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}
