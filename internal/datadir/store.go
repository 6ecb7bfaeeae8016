package datadir

import (
	"context"
	"fmt"
	"os"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/postgres"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// OpenStore opens the database that cfg names (database.url): the SQLite
// file in the data directory, or a PostgreSQL database that several nodes
// may share. Either way it applies the migrations the database lacks and
// refuses a schema newer than this mailca knows. A PostgreSQL database is
// also made ready for this data directory (see Prepare), since 'mailca
// init' wrote its first records into SQLite.
func OpenStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if !cfg.Database.IsPostgres() {
		return sqlite.OpenWith(ctx, cfg.SQLitePath(), sqlite.Options{Durable: cfg.Database.Durable})
	}
	db, err := postgres.Open(ctx, cfg.Database.URL)
	if err != nil {
		return nil, err
	}
	if err := Prepare(ctx, cfg, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// SchemaVersion returns the newest schema version this mailca knows for
// the kind of database cfg names.
func SchemaVersion(cfg *config.Config) int {
	if cfg.Database.IsPostgres() {
		return postgres.SchemaVersion()
	}
	return sqlite.SchemaVersion()
}

// Prepare does for db what 'mailca init' does for the database it
// creates, and is safe to run again: it blocks the keys of the CA
// certificates in the configured chain, which may never be certified, and
// stores the default policy when there is no policy at all.
func Prepare(ctx context.Context, cfg *config.Config, db store.Store) error {
	b, err := os.ReadFile(cfg.Path(cfg.CA.Certificate))
	if err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	chain, err := ParseCertificates(b)
	if err != nil {
		return fmt.Errorf("datadir: %s: %w", cfg.Path(cfg.CA.Certificate), err)
	}
	for _, c := range chain {
		h, err := keys.SPKIHash(c.PublicKey)
		if err != nil {
			return err
		}
		if err := db.BlockKey(ctx, h, "CA key"); err != nil {
			return err
		}
	}
	svc := enrol.NewService(enrol.Config{Store: db, PublicURL: cfg.Server.PublicURL})
	if err := svc.EnsureDefaultPolicy(ctx, "init"); err != nil {
		return fmt.Errorf("datadir: creating the default policy: %w", err)
	}
	return nil
}
