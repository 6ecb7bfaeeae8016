package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
)

// backuper is a store that copies itself to a file: SQLite's.
type backuper interface {
	Backup(ctx context.Context, path string) error
}

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", `Usage: mailca backup [--dir DIR] [--out FILE]

Writes a consistent copy of the SQLite database while mailca keeps running
(SQLite's VACUUM INTO): one self-contained file, which 'mailca audit verify'
accepts once it is put back as DIR/mailca.db. The copy holds every
enrolment, certificate and audit event, and the outbox with the links of
unsent email: protect it like the data directory.

The CA certificates and keys (DIR/ca), the configuration and template
overrides are plain files: back them up with the database.

A PostgreSQL database (database.url postgres://...) is backed up with the
server's own tools, such as pg_dump; this command refuses it.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	out := fs.String("out", "", "backup `file` (default: DIR/backups/mailca-TIME.db)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		return err
	}
	if cfg.Database.IsPostgres() {
		return errors.New("use pg_dump for a PostgreSQL database")
	}
	if *out == "" {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, "backups"), 0o700); err != nil {
			return err
		}
		*out = filepath.Join(cfg.Dir, "backups", "mailca-"+time.Now().UTC().Format("20060102T150405Z")+".db")
	}
	db, err := datadir.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	b, ok := db.(backuper)
	if !ok {
		return errors.New("use pg_dump for a PostgreSQL database")
	}
	if err := b.Backup(ctx, *out); err != nil {
		return err
	}
	if err := os.Chmod(*out, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote %s\n", *out)
	return nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", `Usage: mailca migrate [--dir DIR]

Applies the database migrations this mailca knows and the database lacks,
each in its own transaction, and prints the schema version. mailca serve
and every other command migrate on start too; run this to upgrade at a
moment of your choosing. A database newer than this mailca is refused.

It works on the database that database.url names: the SQLite file of the
data directory, or a PostgreSQL database, which it also makes ready for
this data directory (the CA keys blocked, the default policy stored). Nodes
sharing one PostgreSQL database may start together: one migrates while the
others wait.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*dir)
	if err != nil {
		return err
	}
	db, err := datadir.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := db.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Database schema at version %d (this mailca knows up to %d).\n", v, datadir.SchemaVersion(cfg))
	return nil
}
