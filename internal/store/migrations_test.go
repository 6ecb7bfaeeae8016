package store_test

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/mailca/mailca/internal/store"
)

func TestMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0010_console.sql":      {Data: []byte("-- ten")},
		"m/0002_enrolment.sql":    {Data: []byte("-- two")},
		"m/0001_certificates.sql": {Data: []byte("-- one")},
	}
	ms, err := store.Migrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, m := range ms {
		got = append(got, m.Version)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 10 || ms[2].SQL != "-- ten" || ms[2].File != "0010_console.sql" {
		t.Errorf("Migrations = %+v, want versions 1, 2, 10 with their SQL", ms)
	}
	if store.Newest(ms) != 10 || store.Newest(nil) != 0 {
		t.Errorf("Newest = %d, %d; want 10, 0", store.Newest(ms), store.Newest(nil))
	}
	if err := store.CheckSchema(10, ms); err != nil {
		t.Errorf("CheckSchema(10) = %v", err)
	}
	if err := store.CheckSchema(11, ms); !errors.Is(err, store.ErrSchemaNewer) {
		t.Errorf("CheckSchema(11) = %v, want ErrSchemaNewer", err)
	}

	for name, bad := range map[string]fstest.MapFS{
		"no number":  {"m/console.sql": {}},
		"not sql":    {"m/0001_notes.txt": {}},
		"zero":       {"m/0000_x.sql": {}},
		"one number": {"m/0003_a.sql": {}, "m/0003_b.sql": {}},
	} {
		if _, err := store.Migrations(bad, "m"); err == nil {
			t.Errorf("%s: Migrations accepted %v", name, bad)
		}
	}
	if _, err := store.Migrations(fstest.MapFS{}, "missing"); err == nil {
		t.Error("Migrations of a missing directory succeeded")
	}
}
