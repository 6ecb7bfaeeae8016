package datadir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// Instance is an opened data directory: configuration, database and the
// issuing engine, ready for work.
type Instance struct {
	Config *config.Config
	DB     *sqlite.DB
	Engine *ca.Engine     // nil when opened without the CA key
	Enrol  *enrol.Service // its issuer is Engine
}

// Open loads the configuration in dir, opens the database and decrypts the
// issuing CA key.
func Open(ctx context.Context, dir string, opts ...Option) (*Instance, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	issuer, err := LoadIssuer(cfg)
	if err != nil {
		return nil, err
	}
	linter, err := ca.NewLinter(cfg.CA.WaivedLintWarnings...)
	if err != nil {
		return nil, err
	}
	db, err := sqlite.OpenWith(ctx, cfg.SQLitePath(), sqlite.Options{Durable: cfg.Database.Durable})
	if err != nil {
		return nil, err
	}
	engine, err := ca.New(ca.Config{Issuer: issuer, Store: db, Linter: linter, Organization: cfg.CA.Organization, Country: cfg.CA.Country, Observer: o.ca})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Instance{Config: cfg, DB: db, Engine: engine, Enrol: newService(cfg, db, engine, o.enrol)}, nil
}

// OpenWithoutKey opens dir for work that never issues (inviting,
// approving, listing): the CA key stays encrypted and its passphrase is not
// needed. Activating through it fails.
func OpenWithoutKey(ctx context.Context, dir string) (*Instance, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	db, err := sqlite.OpenWith(ctx, cfg.SQLitePath(), sqlite.Options{Durable: cfg.Database.Durable})
	if err != nil {
		return nil, err
	}
	return &Instance{Config: cfg, DB: db, Enrol: newService(cfg, db, noIssuer{}, nil)}, nil
}

func newService(cfg *config.Config, db *sqlite.DB, iss enrol.Issuer, obs enrol.Observer) *enrol.Service {
	return enrol.NewService(enrol.Config{Store: db, Issuer: iss, PublicURL: cfg.Server.PublicURL, Observer: obs})
}

type noIssuer struct{}

func (noIssuer) Issue(context.Context, ca.Request) (*ca.Certificate, error) {
	return nil, errors.New("datadir: opened without the CA key; cannot issue")
}

// Close releases the database.
func (in *Instance) Close() error { return in.DB.Close() }

// DefaultValidity is the configured validity of new certificates.
func (in *Instance) DefaultValidity() time.Duration {
	return time.Duration(in.Config.CA.ValidityDays) * 24 * time.Hour
}

// LoadIssuer reads the issuing CA chain and decrypts its key.
func LoadIssuer(cfg *config.Config) (*ca.Issuer, error) {
	b, err := os.ReadFile(cfg.Path(cfg.CA.Certificate))
	if err != nil {
		return nil, fmt.Errorf("datadir: %w", err)
	}
	chain, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("datadir: %s: %w", cfg.Path(cfg.CA.Certificate), err)
	}
	pass, err := keys.Passphrase(cfg.Path(cfg.CA.PassphraseFile))
	if err != nil {
		return nil, err
	}
	key, err := keys.LoadFile(cfg.Path(cfg.CA.Key), pass)
	if err != nil {
		return nil, err
	}
	return ca.NewIssuer(chain[0], chain[1:], key, cfg.CA.PKIURL)
}
