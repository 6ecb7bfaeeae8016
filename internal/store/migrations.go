package store

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migration is one embedded schema migration of a dialect: the file
// NNNN_name.sql, applied in order of its number, once.
type Migration struct {
	Version int
	File    string // the file name, under the directory Migrations read
	SQL     string
}

// Migrations reads the migrations of a dialect from dir of fsys, ordered
// by version; an error names a file not called NNNN_name.sql, or two
// files with one number.
func Migrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	out := make([]Migration, 0, len(entries))
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("store: migration %s is not named NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, File: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("store: migrations %s and %s have one number", out[i-1].File, out[i].File)
		}
	}
	return out, nil
}

// Newest returns the version of the last of ms, 0 for none.
func Newest(ms []Migration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// ErrSchemaNewer is returned when a database's schema is newer than the
// migrations this program knows: a newer mailca migrated it, and this one
// might misread it.
var ErrSchemaNewer = errors.New("store: the database schema is newer than this mailca knows; upgrade mailca")

// CheckSchema returns an error wrapping ErrSchemaNewer when current, the
// database's schema version, is newer than the newest of ms.
func CheckSchema(current int, ms []Migration) error {
	if known := Newest(ms); current > known {
		return fmt.Errorf("%w (database at version %d, this mailca knows up to %d)", ErrSchemaNewer, current, known)
	}
	return nil
}
