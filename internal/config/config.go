// Package config reads and writes mailca's configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
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
	// PKCS11 says how to reach the token of CA keys named by pkcs11: URIs.
	PKCS11 PKCS11 `toml:"pkcs11"`
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
	// TLSCert and TLSKey are PEM files (certificate chain, private key):
	// when both are set, mailca serves HTTPS itself, and the console's
	// session cookie is Secure. Empty: plain HTTP, for a TLS proxy in front.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// TrustedProxies are the reverse proxies in front of mailca, as CIDRs
	// ("127.0.0.1/32", "10.0.0.0/8"): a request from one of them is from
	// the right-most X-Forwarded-For address that is not one of them, for
	// the console's login throttle and the audit log. Empty: the
	// connection's address, whatever headers say.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// Database says where records are kept.
type Database struct {
	// URL is "sqlite:PATH" (the default, PATH relative to the data
	// directory) or a postgres:// (postgresql://) URL, for several nodes
	// sharing one PostgreSQL database. Its password, if any, may instead
	// come from PGPASSWORD or ~/.pgpass.
	URL string `toml:"url"`
	// Durable makes every commit wait until it is on disk; see
	// docs/operating.md.
	Durable bool `toml:"durable"`
}

// CA configures the issuing CA.
type CA struct {
	PKIURL         string `toml:"pki_url"`         // http origin of CRLs, OCSP and CA certificates
	Certificate    string `toml:"certificate"`     // PEM: issuing CA certificate, then its chain
	Key            string `toml:"key"`             // encrypted PKCS#8 PEM, or a pkcs11: URI (RFC 7512)
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
	// RootKey is the pkcs11: URI of the root CA key when init made it in a
	// token; 'mailca ca root-crl' signs with it. Empty for a root key file
	// (ca/root-ca.key) or a root kept elsewhere.
	RootKey string `toml:"root_key"`
}

// PKCS11 configures access to a PKCS#11 token (an HSM) holding CA keys.
type PKCS11 struct {
	// Module is the PKCS#11 library, used for URIs without module-path.
	Module string `toml:"module"`
	// The user PIN comes from MAILCA_PKCS11_PIN, a URI's pin-source, or
	// this file (its first line); never from the configuration file itself.
	PINFile string `toml:"pin_file"`
}

// IsPKCS11 reports whether the issuing CA key is in a PKCS#11 token.
func (c CA) IsPKCS11() bool { return keys.IsPKCS11URI(c.Key) }

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
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		return errors.New("server.tls_cert and server.tls_key go together: set both or neither")
	}
	for _, p := range c.Server.TrustedProxies {
		if _, err := netip.ParsePrefix(strings.TrimSpace(p)); err != nil {
			if _, err := netip.ParseAddr(strings.TrimSpace(p)); err != nil {
				return fmt.Errorf("server.trusted_proxies: %q is not a CIDR such as \"10.0.0.0/8\"", p)
			}
		}
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
	if !strings.HasPrefix(c.Database.URL, "sqlite:") && !c.Database.IsPostgres() {
		// Not quoted back: a mistyped URL may still carry a password.
		return errors.New("database.url: want sqlite:PATH or a postgres:// URL")
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
	for _, k := range []struct{ name, v string }{{"ca.key", c.CA.Key}, {"ca.root_key", c.CA.RootKey}} {
		if !keys.IsPKCS11URI(k.v) {
			continue
		}
		u, err := keys.ParsePKCS11URI(k.v)
		if err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
		if err := u.CheckStorable(); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
	}
	if c.CA.RootKey != "" && !keys.IsPKCS11URI(c.CA.RootKey) {
		return errors.New("ca.root_key must be a pkcs11: URI (a root key file is given to 'mailca ca root-crl --root-key')")
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

// IsPostgres reports whether URL names a PostgreSQL database.
func (d Database) IsPostgres() bool {
	return strings.HasPrefix(d.URL, "postgres://") || strings.HasPrefix(d.URL, "postgresql://")
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
# To serve HTTPS without a proxy in front: the certificate chain and the
# private key, PEM files (relative to this directory). The console's
# session cookie is then Secure and its pages send HSTS.
{{- if .Server.TLSCert}}
tls_cert = {{q .Server.TLSCert}}
tls_key = {{q .Server.TLSKey}}
{{- else}}
# tls_cert = "tls/cert.pem"
# tls_key = "tls/key.pem"
{{- end}}
# Behind a reverse proxy: its addresses (CIDRs). Their X-Forwarded-For
# header then names the client, for the console's login throttle and the
# audit log; from anyone else the header is ignored. With a TLS proxy,
# an https public_url makes the console's cookie Secure and sends HSTS.
# trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8"]

[database]
# "sqlite:FILE" keeps everything in one embedded SQLite database. For
# several mailca nodes, give them one PostgreSQL database instead:
#   url = "postgres://mailca@db.example.com:5432/mailca?sslmode=verify-full"
# and run 'mailca migrate' once (see docs/deployment.md). The password is
# best left out of this file: PGPASSWORD or ~/.pgpass supply it.
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
{{- if .CA.IsPKCS11}}
# The issuing CA: certificate followed by its chain, and its private key in
# a PKCS#11 token (an HSM), named by an RFC 7512 URI: the token, the key
# (object= label, id=), optionally module-path= and pin-source=file:PATH.
# The user PIN comes from MAILCA_PKCS11_PIN, a pin-source, or [pkcs11]
# pin_file; a pin-value is refused here.
certificate = {{q .CA.Certificate}}
key = {{q .CA.Key}}
{{- if .CA.RootKey}}
# The root CA key, in the token too; 'mailca ca root-crl' signs with it.
root_key = {{q .CA.RootKey}}
{{- end}}
{{- else}}
# The issuing CA: certificate followed by its chain, and its private key,
# encrypted (PKCS#8, AES-256). The passphrase comes from the environment
# variable MAILCA_KEY_PASSPHRASE, or else from passphrase_file. A key in an
# HSM is named by a PKCS#11 URI instead, such as
# key = "pkcs11:token=mailca;object=issuing-ca" (see [pkcs11] below).
certificate = {{q .CA.Certificate}}
key = {{q .CA.Key}}
passphrase_file = {{q .CA.PassphraseFile}}
{{- end}}
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

[pkcs11]
# For CA keys in a PKCS#11 token (see docs/operating.md, "Keys in an HSM"):
# the module loaded for URIs without module-path, and a file whose first
# line is the user PIN, read when MAILCA_PKCS11_PIN is unset.
{{- if .PKCS11.Module}}
module = {{q .PKCS11.Module}}
{{- else}}
# module = "/usr/lib/softhsm/libsofthsm2.so"
{{- end}}
{{- if .PKCS11.PINFile}}
pin_file = {{q .PKCS11.PINFile}}
{{- else}}
# pin_file = "/run/secrets/pkcs11-pin"
{{- end}}

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
