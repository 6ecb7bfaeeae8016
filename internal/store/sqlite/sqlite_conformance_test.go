package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mailca.db"))
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		return db
	})
}
