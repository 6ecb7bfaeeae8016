package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/mail"
	"github.com/mailca/mailca/internal/metrics"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/web"
	"github.com/prometheus/client_golang/prometheus"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", `Usage: mailca serve [--dir DIR] [--addr ADDR] [--tls-cert FILE --tls-key FILE]

Runs the web server (enrolment form, activation, the RA Management
Console, the REST API, CRLs and OCSP), the outbox worker that delivers
email, the webhook dispatcher and the scheduled jobs (expiry, reminders,
stalled imports). The data directory must have been created with 'mailca
init'. The CA key passphrase comes from MAILCA_KEY_PASSPHRASE or the
configured passphrase file; the PIN of keys in an HSM from
MAILCA_PKCS11_PIN or [pkcs11] pin_file. With [database] url set to a
PostgreSQL database, several serve processes can share it.

On the first run (no console account yet) serve prints a one-time link to
create the first administrator: on standard output when it is a terminal,
else into DIR/setup-link.txt (mode 0600), whose path it prints.

With no SMTP server configured ([mail] smtp_host), email stays in the outbox
and the development mailbox at /dev/mailbox shows it to clients on this
machine only.

The RA Management Console is at /console/, the REST API at /api/v1/
(its OpenAPI document at /api/v1/openapi.json). With --tls-cert and --tls-key
(or [server] tls_cert and tls_key) mailca serves HTTPS itself; then, or
when server.public_url is https (a TLS proxy in front), the console's
session cookie is Secure (__Host-) and its pages send HSTS.

On SIGINT or SIGTERM, serve stops taking requests and gives those in flight
and the console's CSV imports 30 seconds to finish; an import still running
then stops between two chunks, its batch failed "interrupted by shutdown".
CSV uploads are kept in DIR/spool while they are imported.
`, stderr)
	dir := fs.String("dir", config.DefaultDir, "data `directory`")
	addr := fs.String("addr", "", "listen `address` (default: server.listen of the configuration)")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate chain `file` (default: server.tls_cert)")
	tlsKey := fs.String("tls-key", "", "the PEM private key `file` of --tls-cert (default: server.tls_key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return usageError(fs, err.Error())
	}
	met, err := metrics.New(metrics.Config{Registry: prometheus.NewRegistry(), Runtime: true})
	if err != nil {
		return err
	}
	in, err := datadir.Open(ctx, *dir, datadir.WithObservers(met, met))
	if err != nil {
		return err
	}
	defer in.Close()
	if err := met.WatchQueue(in.DB); err != nil {
		return err
	}
	cfg := in.Config
	if *addr == "" {
		*addr = cfg.Server.Listen
	}
	if *tlsCert == "" && *tlsKey == "" {
		*tlsCert, *tlsKey = cfg.Path(cfg.Server.TLSCert), cfg.Path(cfg.Server.TLSKey)
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usageError(fs, "give --tls-cert and --tls-key together")
	}
	secure := *tlsCert != ""
	if u, err := url.Parse(cfg.Server.PublicURL); err == nil && u.Scheme != "https" && !loopbackName(u.Hostname()) {
		logger.Warn("server.public_url is not https: the links in emails carry enrolment tokens, which would cross the network in clear; serve mailca behind TLS", "public_url", cfg.Server.PublicURL)
	}

	templateDir := filepath.Join(cfg.Dir, "templates")
	tmpl, err := outbox.NewTemplates(templateDir)
	if err != nil {
		return err
	}
	for _, p := range tmpl.Problems() {
		logger.Warn("email template override ignored", "err", p)
	}
	chain, err := os.ReadFile(cfg.Path(cfg.CA.Certificate))
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var devMailbox web.DevMailbox
	var worker *outbox.Worker
	if cfg.Mail.SMTPHost == "" {
		devMailbox = devMailboxAdapter{db: in.DB, tmpl: tmpl, sender: cfg.Mail.FromName}
		logger.Warn("no SMTP server configured: email stays in the outbox; read it at /dev/mailbox from this machine")
		if logger.Enabled(ctx, slog.LevelDebug) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				logDevLinks(workCtx, in.DB, logger)
			}()
		}
	} else {
		sender, err := newSender(cfg)
		if err != nil {
			return err
		}
		defer sender.Close()
		worker = outbox.NewWorker(outbox.Config{
			Store: in.DB, Templates: tmpl, Sender: sender,
			From:   mail.Address{Name: cfg.Mail.FromName, Addr: cfg.Mail.From},
			Logger: logger, Workers: cfg.Mail.Connections,
			// A short lease: after a crash, the messages this node had
			// claimed go out again within half a minute.
			Lease:    30 * time.Second,
			Observer: met,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker.Run(workCtx); err != nil {
				logger.Error("outbox worker stopped", "err", err)
			}
		}()
	}

	pkiHandler, err := startPKI(ctx, workCtx, &wg, in, logger)
	if err != nil {
		return err
	}
	// Templates edited on another node, or by hand, reach this node's
	// emails within a minute (an edit in this node's console at once).
	wg.Add(1)
	go func() {
		defer wg.Done()
		reloadEvery(workCtx, time.Minute, tmpl.Reload, logger)
	}()
	if err := startLifecycle(workCtx, &wg, in, logger); err != nil {
		return err
	}
	// One account service for the console and the first-run link: its
	// start-up hashes a password.
	accounts, err := newAuth(cfg, in.DB)
	if err != nil {
		return err
	}
	cons, err := newConsole(cfg, in, accounts, devMailbox, templateDir, tmpl.Reload, secureConsole(cfg, secure), logger)
	if err != nil {
		return err
	}
	apiHandler, err := newAPI(in, chain, logger)
	if err != nil {
		return err
	}
	startWebhooks(workCtx, &wg, in, logger)
	proxies, err := trustedProxies(cfg)
	if err != nil {
		return err
	}
	handler, err := web.New(web.Config{TrustedProxies: proxies, Enrol: in.Enrol, Mailbox: devMailbox, TemplateDir: templateDir, Logger: logger, ChainPEM: chain, PKI: pkiHandler,
		Ready: readyChecks(in), Metrics: met.Handler(), Requests: met, Console: cons.Handler(), API: apiHandler})
	if err != nil {
		return err
	}
	if worker != nil {
		handler = wakeAfterPost(handler, worker)
	}
	var tlsConfig *tls.Config
	if secure {
		// Loaded before listening, so a wrong file stops start-up. A renewed
		// certificate takes effect at the next start.
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // CSV uploads
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
	}
	fmt.Fprintf(stdout, "mailca listening on %s (public URL %s)\n", ln.Addr(), cfg.Server.PublicURL)
	if err := printFirstRun(ctx, stdout, cfg, accounts); err != nil {
		return err
	}
	if devMailbox != nil {
		fmt.Fprintf(stdout, "development mailbox: http://%s/dev/mailbox\n", loopbackURLHost(ln.Addr()))
	}

	serveErr := make(chan error, 1)
	go func() {
		if secure {
			serveErr <- srv.ServeTLS(ln, "", "") // srv.TLSConfig has the certificate
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	select {
	case err := <-serveErr:
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cons.Close(closeCtx)
		stopWork()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: stop taking requests, let those in flight finish
	// their transactions, then stop the worker after its current sends.
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	// The console's CSV imports run on after their request: wait for them
	// within the same budget, then stop them between chunks.
	cons.Close(shutCtx)
	stopWork()
	wg.Wait()
	return err
}

// reloadEvery calls reload every period until ctx ends, logging a
// failure (the templates in use then stay).
func reloadEvery(ctx context.Context, period time.Duration, reload func() error, logger *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := reload(); err != nil {
				logger.Warn("email templates not reloaded", "err", err)
			}
		}
	}
}

// wakeAfterPost pokes the outbox worker after every POST, so the email a
// transition enqueued goes out at once rather than at the next poll.
func wakeAfterPost(h http.Handler, w *outbox.Worker) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(rw, r)
		if r.Method == http.MethodPost {
			w.Wake()
		}
	})
}

// loopbackName reports whether host names this machine.
func loopbackName(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func loopbackURLHost(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && (t.IP.IsUnspecified() || t.IP.IsLoopback()) {
		return fmt.Sprintf("localhost:%d", t.Port)
	}
	return a.String()
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("unknown log level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q", format)
}

func newSender(cfg *config.Config) (*mail.Sender, error) {
	password := os.Getenv(config.SMTPPasswordEnv)
	if password == "" && cfg.Mail.SMTPPasswordFile != "" {
		b, err := os.ReadFile(cfg.Path(cfg.Mail.SMTPPasswordFile))
		if err != nil {
			return nil, err
		}
		password = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}
	return mail.NewSender(mail.SMTPConfig{
		Host: cfg.Mail.SMTPHost, Port: cfg.Mail.SMTPPort, TLS: cfg.Mail.SMTPTLS,
		Username: cfg.Mail.SMTPUsername, Password: password, Connections: cfg.Mail.Connections,
	})
}

// devMailboxAdapter shows the outbox as a mailbox, rendering each message
// the way it would be sent.
type devMailboxAdapter struct {
	db     store.Store
	tmpl   *outbox.Templates
	sender string // the configured from_name, as the worker passes it
}

func (d devMailboxAdapter) List(ctx context.Context, limit int) ([]web.DevMessage, error) {
	msgs, err := d.db.Messages(ctx, outbox.Filter{Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]web.DevMessage, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, d.convert(m))
	}
	return out, nil
}

func (d devMailboxAdapter) Get(ctx context.Context, id int64) (*web.DevMessage, error) {
	m, err := d.db.Message(ctx, id)
	if errors.Is(err, store.ErrNoMessage) {
		return nil, errs.E(errs.NotFound, "no message %d", id)
	}
	if err != nil {
		return nil, err
	}
	dm := d.convert(*m)
	return &dm, nil
}

func (d devMailboxAdapter) convert(m outbox.Message) web.DevMessage {
	dm := web.DevMessage{ID: m.ID, To: m.To, Created: m.CreatedAt, State: m.State}
	if m.Data != nil && d.sender != "" {
		data := make(map[string]string, len(m.Data)+1)
		for k, v := range m.Data {
			data[k] = v
		}
		data["Sender"] = d.sender
		m.Data = data
	}
	subject, text, html, err := d.tmpl.Preview(m)
	if errors.Is(err, outbox.ErrErased) {
		dm.Subject = "(sent: content erased after delivery)"
		return dm
	}
	if err != nil {
		dm.Subject = "(cannot render: " + err.Error() + ")"
		return dm
	}
	dm.Subject, dm.Text, dm.HTML = subject, text, html
	return dm
}

// logDevLinks logs the link of each new email at debug level, for a
// developer without a mail server. It runs only when no SMTP server is
// configured and the log level is debug: these links are secrets, and a
// production log must never hold them.
func logDevLinks(ctx context.Context, db store.Store, logger *slog.Logger) {
	var last int64
	if msgs, err := db.Messages(ctx, outbox.Filter{Limit: 1}); err == nil && len(msgs) > 0 {
		last = msgs[0].ID // only mail that arrives from now on
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs, err := db.Messages(ctx, outbox.Filter{Limit: 200})
		if err != nil {
			continue
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			m := msgs[i]
			if m.ID <= last {
				continue
			}
			last = m.ID
			if link := m.Data["Link"]; link != "" {
				logger.Debug("development mailbox", "message", m.ID, "template", m.Template, "to", m.To, "link", link)
			}
		}
	}
}
