// Package config reads and writes mailca's configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/mailbox"
)

// FileName is the configuration file's name inside the data directory.
const FileName = "mailca.toml"

// DefaultDir is the data directory used when none is given.
const DefaultDir = "./mailca-data"

// Config is mailca's configuration. Relative paths are relative to Dir.
type Config struct {
	Dir string `toml:"-"` // the data directory, absolute

	Server   Server   `toml:"server"`
	Database Database `toml:"database"`
	CA       CA       `toml:"ca"`
	Mail     Mail     `toml:"mail"`
	// Lifecycle configures expiry reminders and the administrators' digest.
	Lifecycle Lifecycle `toml:"lifecycle"`
}

// Lifecycle configures what 'mailca serve' does as certificates near their
// end. The zero value is usable: reminders at 30, 7 and 1 days, no digest.
type Lifecycle struct {
	// ReminderDays are the days before a certificate's notAfter at which
	// its holder is reminded, with a renewal link. Default [30, 7, 1];
	// an empty list turns reminders off.
	ReminderDays []int `toml:"reminder_days"`
	// DigestTo receives a daily list of the certificates that expire within
	// the largest of ReminderDays. Empty: no digest.
	DigestTo []string `toml:"digest_to"`
	// Interval is how often expiry and reminders run, such as "1h" (the
	// default); between 1m and 24h.
	Interval time.Duration `toml:"interval"`
}

// Mail configures outgoing email. With no SMTP host, messages stay in the
// outbox and the development mailbox shows them.
type Mail struct {
	From     string `toml:"from"`      // sender mailbox, e.g. "certificates@example.com"
	FromName string `toml:"from_name"` // display name, e.g. "Example IT"
	SMTPHost string `toml:"smtp_host"`
	SMTPPort int    `toml:"smtp_port"` // default by TLS mode: 587, 465 or 25
	// SMTPTLS is "starttls" (default), "tls" (implicit, port 465) or
	// "none" (loopback relays only).
	SMTPTLS      string `toml:"smtp_tls"`
	SMTPUsername string `toml:"smtp_username"`
	// The SMTP password comes from MAILCA_SMTP_PASSWORD, or from this file;
	// never from the configuration file itself.
	SMTPPasswordFile string `toml:"smtp_password_file"`
	// Connections is how many SMTP connections stay open (default 2).
	Connections int `toml:"connections"`
}

// SMTPPasswordEnv carries the SMTP password.
const SMTPPasswordEnv = "MAILCA_SMTP_PASSWORD"

// Server configures the HTTP server.
type Server struct {
	Listen    string `toml:"listen"`     // address to listen on, e.g. ":8080"
	PublicURL string `toml:"public_url"` // origin of links in emails
}

// Database says where records are kept.
type Database struct {
	// URL is "sqlite:PATH" (the default, PATH relative to the data
	// directory) or, later, a postgres:// URL.
	URL string `toml:"url"`
	// Durable makes every commit wait until it is on disk; see
	// docs/operating.md.
	Durable bool `toml:"durable"`
}

// CA configures the issuing CA.
type CA struct {
	PKIURL         string `toml:"pki_url"`         // http origin of CRLs, OCSP and CA certificates
	Certificate    string `toml:"certificate"`     // PEM: issuing CA certificate, then its chain
	Key            string `toml:"key"`             // encrypted PKCS#8 PEM
	PassphraseFile string `toml:"passphrase_file"` // used when MAILCA_KEY_PASSPHRASE is unset
	Organization   string `toml:"organization"`
	Country        string `toml:"country"`
	DefaultProfile string `toml:"default_profile"`
	ValidityDays   int    `toml:"validity_days"`
	// WaivedLintWarnings names zlint warnings accepted for this CA. Only a
	// development CA on localhost needs one; errors are never waived.
	WaivedLintWarnings []string `toml:"waived_lint_warnings"`
	// CRLInterval is how often 'mailca serve' makes a new CRL when nothing
	// is revoked, such as "1h" (the default); at most 168h. Each CRL is
	// valid for twice as long, at most ten days.
	CRLInterval time.Duration `toml:"crl_interval"`
}

// Load reads DIR/mailca.toml, fills defaults and validates the result.
func Load(dir string) (*Config, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	path := filepath.Join(abs, FileName)
	c := &Config{Dir: abs}
	md, err := toml.DecodeFile(path, c)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: %s not found: run 'mailca init --dir %s' first", path, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("config: %s: unknown setting %q", path, und[0].String())
	}
	c.Dir = abs
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) validate() error {
	if c.Server.Listen == "" {
		c.Server.Listen = ":8080"
	}
	if c.Database.URL == "" {
		c.Database.URL = "sqlite:mailca.db"
	}
	if c.CA.DefaultProfile == "" {
		c.CA.DefaultProfile = ca.DefaultProfile
	}
	if c.CA.ValidityDays == 0 {
		c.CA.ValidityDays = 365
	}
	if _, err := ca.ProfileByName(c.CA.DefaultProfile); err != nil {
		return fmt.Errorf("ca.default_profile: %w", err)
	}
	if c.CA.CRLInterval == 0 {
		c.CA.CRLInterval = ca.DefaultCRLInterval
	}
	if err := ca.CheckCRLInterval(c.CA.CRLInterval); err != nil {
		return fmt.Errorf("ca.crl_interval: %w", err)
	}
	if c.CA.ValidityDays < 1 || c.CA.ValidityDays > 825 {
		return fmt.Errorf("ca.validity_days = %d, want 1 to 825", c.CA.ValidityDays)
	}
	if !strings.HasPrefix(c.Database.URL, "sqlite:") {
		return fmt.Errorf("database.url %q: only sqlite:PATH is supported", c.Database.URL)
	}
	if c.Mail.From == "" {
		c.Mail.From = "mailca@localhost"
	}
	switch c.Mail.SMTPTLS {
	case "":
		c.Mail.SMTPTLS = "starttls"
	case "starttls", "tls", "none":
	default:
		return fmt.Errorf("mail.smtp_tls = %q, want starttls, tls or none", c.Mail.SMTPTLS)
	}
	if c.Mail.Connections == 0 {
		c.Mail.Connections = 2
	}
	if c.Lifecycle.ReminderDays == nil {
		c.Lifecycle.ReminderDays = []int{30, 7, 1}
	}
	for _, d := range c.Lifecycle.ReminderDays {
		if d < 1 || d > 825 {
			return fmt.Errorf("lifecycle.reminder_days: %d, want 1 to 825", d)
		}
	}
	for _, a := range c.Lifecycle.DigestTo {
		if _, err := mailbox.Parse(a); err != nil {
			return fmt.Errorf("lifecycle.digest_to: %q is not a mailbox", a)
		}
	}
	if c.Lifecycle.Interval == 0 {
		c.Lifecycle.Interval = time.Hour
	}
	if c.Lifecycle.Interval < time.Minute || c.Lifecycle.Interval > 24*time.Hour {
		return fmt.Errorf("lifecycle.interval = %s, want 1m to 24h", c.Lifecycle.Interval)
	}
	if c.CA.Certificate == "" || c.CA.Key == "" {
		return errors.New("ca.certificate and ca.key are required")
	}
	if !strings.HasPrefix(c.CA.PKIURL, "http://") {
		return fmt.Errorf("ca.pki_url %q must be an http:// URL (CRLs and AIA must be plain HTTP)", c.CA.PKIURL)
	}
	return nil
}

// Path resolves p against the data directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// SQLitePath returns the database file of a sqlite: URL.
func (c *Config) SQLitePath() string {
	return c.Path(strings.TrimPrefix(c.Database.URL, "sqlite:"))
}

// Render returns the commented configuration file for c.
func Render(c *Config) ([]byte, error) {
	var b bytes.Buffer
	err := fileTemplate.Execute(&b, c)
	return b.Bytes(), err
}

// q quotes a string as a TOML basic string.
func q(s string) string {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(map[string]string{"v": s}); err != nil {
		panic(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(b.String(), "v = "))
}

var fileTemplate = template.Must(template.New("config").Funcs(template.FuncMap{"q": q, "list": func(xs []string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = q(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}}).Parse(`# mailca configuration. Relative paths are relative to this directory.
# Written by 'mailca init'; edit freely, mailca never rewrites it.

[server]
# Address the web server listens on.
listen = {{q .Server.Listen}}
# Origin of the links mailca puts in emails (enrolment, activation).
# Use https:// in production, behind TLS.
public_url = {{q .Server.PublicURL}}

[database]
# "sqlite:FILE" keeps everything in one embedded SQLite database.
url = {{q .Database.URL}}
# true: every commit waits for the disk (SQLite synchronous=FULL), so not
# even a power failure can undo one; it costs an fsync per commit. false
# (the default) loses nothing when mailca crashes, only on power loss.
durable = {{.Database.Durable}}

[ca]
# Origin that serves CRLs (/crl/ID.crl), OCSP (/ocsp) and CA certificates
# (/ca/ID.crt). It goes into every certificate, so choose a name you can keep
# for the life of the CA. It must be plain http:// (S/MIME BR 7.1.2.3).
pki_url = {{q .CA.PKIURL}}
# The issuing CA: certificate followed by its chain, and its private key,
# encrypted (PKCS#8, AES-256). The passphrase comes from the environment
# variable MAILCA_KEY_PASSPHRASE, or else from passphrase_file.
certificate = {{q .CA.Certificate}}
key = {{q .CA.Key}}
passphrase_file = {{q .CA.PassphraseFile}}
# Subject of organization- and sponsor-validated certificates.
organization = {{q .CA.Organization}}
country = {{q .CA.Country}}
# Profile and validity used when a request names none. Profiles:
# mailbox-strict, mailbox-multipurpose, organization-strict,
# organization-multipurpose, sponsor-strict, sponsor-multipurpose.
default_profile = {{q .CA.DefaultProfile}}
validity_days = {{.CA.ValidityDays}}
{{- if .CA.WaivedLintWarnings}}
# zlint warnings accepted for this CA. A development CA whose pki_url is
# localhost needs w_smime_aia_contains_internal_names; a production CA must
# have none. Lint errors can never be waived.
waived_lint_warnings = {{list .CA.WaivedLintWarnings}}
{{- end}}
# How often 'mailca serve' makes a new CRL when nothing is revoked (a
# revocation makes one within seconds). Each CRL is valid for twice this,
# at most ten days; at most "168h".
# crl_interval = "1h"

[mail]
# Sender of every email mailca sends.
from = {{q .Mail.From}}
from_name = {{q .Mail.FromName}}
# SMTP relay. Leave smtp_host empty to keep mail in the outbox, where the
# development mailbox (http://localhost:8080/dev/mailbox) shows it: handy on
# a laptop, never for real users.
smtp_host = {{q .Mail.SMTPHost}}
# smtp_port = 587
# "starttls" (default), "tls" (implicit TLS, port 465) or "none" (loopback only).
# smtp_tls = "starttls"
# smtp_username = "mailca"
# The password comes from MAILCA_SMTP_PASSWORD or from this file.
# smtp_password_file = "/run/secrets/smtp-password"

[lifecycle]
# Days before a certificate expires at which its holder is reminded by
# email, with a link to renew. An empty list turns reminders off.
# reminder_days = [30, 7, 1]
# Administrators who get a daily list of the certificates that expire
# within the largest of reminder_days.
# digest_to = ["pki-admins@example.com"]
# How often expiry and reminders run.
# interval = "1h"

`))
