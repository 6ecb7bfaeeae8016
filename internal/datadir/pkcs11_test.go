package datadir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/datadir"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/testkit"
)

// TestInitOpenPKCS11 initialises a data directory with its CA keys in a
// SoftHSM2 token, opens it, issues, and probes the signer; then closes it
// and shows the sessions are gone.
func TestInitOpenPKCS11(t *testing.T) {
	s := testkit.NewSoftHSM(t)
	t.Setenv(keys.PINEnv, s.PIN)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	res, err := datadir.Init(ctx, datadir.InitOptions{
		Dir: dir, Organization: "Example Org", PKIURL: "http://pki.example.com",
		PKCS11: datadir.TokenOptions{Token: "pkcs11:token=" + s.Token, Module: s.Module},
	})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if !res.Config.CA.IsPKCS11() || res.Config.CA.RootKey == "" {
		t.Fatalf("ca.key = %q, ca.root_key = %q; want pkcs11: URIs", res.Config.CA.Key, res.Config.CA.RootKey)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "ca"))
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".key" || e.Name() == "passphrase" {
			t.Errorf("Init wrote %s for a token CA", e.Name())
		}
	}

	in, err := datadir.Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	addr, _ := mailbox.Parse("ann@example.com")
	c, err := in.Engine.Issue(ctx, ca.Request{PublicKey: keys.MustGenerate(keys.ECDSAP256).Public(), Mailbox: addr})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if err := c.Cert.CheckSignatureFrom(res.Issuer); err != nil {
		t.Errorf("certificate does not verify under the issuing CA: %v", err)
	}
	// The readiness probe of /readyz signs in the token.
	if err := in.Engine.Issuer().Probe(ctx); err != nil {
		t.Errorf("Probe: %v", err)
	}
	if err := in.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// After Close, the token's sessions are closed: the key no longer signs.
	if err := in.Engine.Issuer().Probe(ctx); err == nil {
		t.Errorf("Probe after Close succeeded; the PKCS#11 sessions were left open")
	}

	// A wrong PIN fails Open with ErrWrongPIN.
	t.Setenv(keys.PINEnv, "0"+s.PIN)
	if _, err := datadir.Open(ctx, dir); !errors.Is(err, keys.ErrWrongPIN) {
		t.Errorf("Open with a wrong PIN = %v, want ErrWrongPIN", err)
	}
}
