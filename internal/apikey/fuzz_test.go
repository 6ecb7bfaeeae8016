package apikey_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/testkit"
)

// FuzzAuthenticate checks that no string but the key itself authenticates,
// and that none makes Authenticate fail otherwise than with
// ErrUnauthenticated.
func FuzzAuthenticate(f *testing.F) {
	db := testkit.MustOpenDB(f)
	svc := apikey.NewService(db, nil)
	k, token, err := svc.Create(context.Background(), "test", apikey.CreateRequest{Name: "k", Scopes: []apikey.Scope{apikey.EventsRead}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "mca_", "mca_" + k.ID, "mca_" + k.ID + "_", token + "=", token[:len(token)-2], "mca__" + k.ID, "Bearer " + token} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := svc.Authenticate(context.Background(), s)
		if s == token {
			if err != nil || got.ID != k.ID {
				t.Fatalf("the key itself: %v", err)
			}
			return
		}
		if !errors.Is(err, apikey.ErrUnauthenticated) || got != nil {
			t.Fatalf("Authenticate(%q) = %v, %v", s, got, err)
		}
	})
}
