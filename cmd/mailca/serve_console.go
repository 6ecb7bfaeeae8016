package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/web"
	"github.com/mailca/mailca/internal/web/console"
)

// newConsole returns the RA Management Console's handler for serve: the
// accounts of svc (newAuth), the instance's enrolment service and database, the
// development mailbox when there is no SMTP server (dev != nil), and
// Secure cookies with HSTS when browsers use HTTPS (secureConsole). Uploads are
// spooled in <data dir>/spool, where the files of imports that died with
// their process are removed first. serve closes the console after its
// HTTP server, to let the background imports finish (Console.Close).
func newConsole(cfg *config.Config, in *datadir.Instance, svc *auth.Service, dev web.DevMailbox, templateDir string, reloadMail func() error, secure bool, logger *slog.Logger) (*console.Console, error) {
	proxies, err := trustedProxies(cfg)
	if err != nil {
		return nil, err
	}
	spoolDir := filepath.Join(cfg.Dir, "spool")
	if n, err := console.CleanSpool(spoolDir, time.Now().Add(-enrol.BatchStall)); err != nil {
		logger.Warn("removing the uploads of stopped imports", "dir", spoolDir, "err", err)
	} else if n > 0 {
		logger.Info("removed the uploads of stopped imports", "dir", spoolDir, "files", n)
	}
	var box console.DevMailbox
	if dev != nil {
		box = consoleMailbox{dev}
	}
	// The issuing chain for the certificate pages' chain.pem: the file
	// /ca/chain.pem serves.
	chain, err := os.ReadFile(cfg.Path(cfg.CA.Certificate))
	if err != nil {
		return nil, err
	}
	c, err := console.New(console.Config{
		Auth: svc, Enrol: in.Enrol, Store: in.DB, Mailbox: box,
		APIKeys: apikey.NewService(in.DB, nil), Webhooks: in.DB,
		Mail:        console.MailSettings{Host: cfg.Mail.SMTPHost, Port: cfg.Mail.SMTPPort, TLS: cfg.Mail.SMTPTLS, From: cfg.Mail.From},
		TemplateDir: templateDir, ReloadMail: reloadMail, ChainPEM: chain, PublicURL: cfg.Server.PublicURL, Secure: secure, TrustedProxies: proxies, Logger: logger,
		AfterSetup: func() {
			if err := removeSetupLink(cfg); err != nil {
				logger.Warn("removing the setup link's file", "err", err)
			}
		},
		SpoolDir: spoolDir,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// consoleMailbox shows the development mailbox in the console.
type consoleMailbox struct{ box web.DevMailbox }

func (m consoleMailbox) List(ctx context.Context, limit int) ([]console.DevMessage, error) {
	msgs, err := m.box.List(ctx, limit)
	out := make([]console.DevMessage, 0, len(msgs))
	for _, d := range msgs {
		out = append(out, console.DevMessage(d))
	}
	return out, err
}

func (m consoleMailbox) Get(ctx context.Context, id int64) (*console.DevMessage, error) {
	d, err := m.box.Get(ctx, id)
	if d == nil || err != nil {
		return nil, err
	}
	cm := console.DevMessage(*d)
	return &cm, nil
}
