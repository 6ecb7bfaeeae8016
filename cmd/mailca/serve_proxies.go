package main

import (
	"net/netip"
	"net/url"

	"github.com/mailca/mailca/internal/config"
	"github.com/mailca/mailca/internal/web/clientip"
)

// trustedProxies returns server.trusted_proxies as prefixes, for the audit
// log's and the console's client address.
func trustedProxies(cfg *config.Config) ([]netip.Prefix, error) {
	return clientip.Parse(cfg.Server.TrustedProxies)
}

// secureConsole reports whether browsers reach the console over HTTPS:
// mailca serves TLS itself (tls), or server.public_url is https, as when a
// proxy in front terminates TLS. The console then sets a Secure __Host-
// cookie and sends HSTS.
func secureConsole(cfg *config.Config, tls bool) bool {
	u, err := url.Parse(cfg.Server.PublicURL)
	return tls || (err == nil && u.Scheme == "https")
}
