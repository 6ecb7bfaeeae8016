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
	"github.com/mailca/mailca/internal/store"
)

// Instance is an opened data directory: configuration, database and the
// issuing engine, ready for work.
type Instance struct {
	Config *config.Config
	DB     store.Store    // SQLite or PostgreSQL, as database.url says
	Engine *ca.Engine     // nil when opened without the CA key
	Enrol  *enrol.Service // its issuer is Engine

	closeKey func() error // releases the PKCS#11 sessions of the CA key
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
	issuer, closeKey, err := loadIssuer(cfg)
	if err != nil {
		return nil, err
	}
	linter, err := ca.NewLinter(cfg.CA.WaivedLintWarnings...)
	if err != nil {
		closeKey()
		return nil, err
	}
	db, err := OpenStore(ctx, cfg)
	if err != nil {
		closeKey()
		return nil, err
	}
	engine, err := ca.New(ca.Config{Issuer: issuer, Store: db, Linter: linter, Organization: cfg.CA.Organization, Country: cfg.CA.Country, Observer: o.ca})
	if err != nil {
		db.Close()
		closeKey()
		return nil, err
	}
	return &Instance{Config: cfg, DB: db, Engine: engine, Enrol: newService(cfg, db, engine, o.enrol), closeKey: closeKey}, nil
}

// OpenWithoutKey opens dir for work that never issues (inviting,
// approving, listing): the CA key stays encrypted and its passphrase is not
// needed. Activating through it fails.
func OpenWithoutKey(ctx context.Context, dir string) (*Instance, error) {
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	db, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Instance{Config: cfg, DB: db, Enrol: newService(cfg, db, noIssuer{}, nil)}, nil
}

func newService(cfg *config.Config, db store.Store, iss enrol.Issuer, obs enrol.Observer) *enrol.Service {
	return enrol.NewService(enrol.Config{Store: db, Issuer: iss, PublicURL: cfg.Server.PublicURL, Observer: obs})
}

type noIssuer struct{}

func (noIssuer) Issue(context.Context, ca.Request) (*ca.Certificate, error) {
	return nil, errors.New("datadir: opened without the CA key; cannot issue")
}

// Close releases the database and the CA key's PKCS#11 sessions.
func (in *Instance) Close() error {
	err := in.DB.Close()
	if in.closeKey != nil {
		err = errors.Join(err, in.closeKey())
	}
	return err
}

// DefaultValidity is the configured validity of new certificates.
func (in *Instance) DefaultValidity() time.Duration {
	return time.Duration(in.Config.CA.ValidityDays) * 24 * time.Hour
}

// LoadIssuer reads the issuing CA chain and decrypts its key, or finds it
// in a PKCS#11 token when ca.key is a pkcs11: URI (see OpenKey); the
// token's sessions then stay open until the process ends.
func LoadIssuer(cfg *config.Config) (*ca.Issuer, error) {
	iss, _, err := loadIssuer(cfg)
	return iss, err
}

func loadIssuer(cfg *config.Config) (*ca.Issuer, func() error, error) {
	b, err := os.ReadFile(cfg.Path(cfg.CA.Certificate))
	if err != nil {
		return nil, nil, fmt.Errorf("datadir: %w", err)
	}
	chain, err := ParseCertificates(b)
	if err != nil {
		return nil, nil, fmt.Errorf("datadir: %s: %w", cfg.Path(cfg.CA.Certificate), err)
	}
	key, closeKey, err := OpenKey(cfg, cfg.CA.Key)
	if err != nil {
		return nil, nil, err
	}
	iss, err := ca.NewIssuer(chain[0], chain[1:], key, cfg.CA.PKIURL)
	if err != nil {
		closeKey()
		return nil, nil, err
	}
	return iss, closeKey, nil
}
