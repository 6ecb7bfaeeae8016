package main

import (
	"testing"

	"github.com/mailca/mailca/internal/config"
)

func TestSecureConsole(t *testing.T) {
	tests := []struct {
		publicURL string
		tls       bool
		want      bool
	}{
		{"http://localhost:8080", false, false},
		{"http://localhost:8080", true, true},
		{"https://mailca.example.org", false, true}, // a TLS proxy in front
		{"https://mailca.example.org", true, true},
	}
	for _, tt := range tests {
		cfg := &config.Config{Server: config.Server{PublicURL: tt.publicURL}}
		if got := secureConsole(cfg, tt.tls); got != tt.want {
			t.Errorf("secureConsole(%s, tls %v) = %v, want %v", tt.publicURL, tt.tls, got, tt.want)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg := &config.Config{Server: config.Server{TrustedProxies: []string{"127.0.0.1/32", "10.0.0.0/8"}}}
	p, err := trustedProxies(cfg)
	if err != nil || len(p) != 2 || p[1].String() != "10.0.0.0/8" {
		t.Errorf("trustedProxies = %v, %v", p, err)
	}
}
