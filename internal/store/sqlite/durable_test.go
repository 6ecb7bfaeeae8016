package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

func TestDurableOption(t *testing.T) {
	for _, tt := range []struct {
		durable bool
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{false, 1}, {true, 2}} {
		db, err := OpenWith(context.Background(), filepath.Join(t.TempDir(), "db"), Options{Durable: tt.durable})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := db.write.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got != tt.want {
			t.Errorf("Durable %v: synchronous = %d, want %d", tt.durable, got, tt.want)
		}
	}
}
