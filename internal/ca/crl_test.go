package ca_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/keys"
	"github.com/mailca/mailca/internal/store/sqlite"
	"github.com/mailca/mailca/internal/testkit"
	"github.com/mailca/mailca/internal/testkit/clients"
)

var oidReasonCode = asn1.ObjectIdentifier{2, 5, 29, 21}

// revokedSet issues one certificate per allowed reason and revokes it,
// plus one that stays valid, and returns them by reason.
func (f *pkiFixture) revokedSet(t *testing.T, at time.Time) (map[ca.RevocationReason]*x509.Certificate, *x509.Certificate) {
	t.Helper()
	out := map[ca.RevocationReason]*x509.Certificate{}
	for _, name := range ca.RevocationReasons() {
		r, err := ca.ParseRevocationReason(name)
		if err != nil {
			t.Fatal(err)
		}
		c := f.issue(t, 0)
		f.revoke(t, c, r, at)
		out[r] = c
	}
	return out, f.issue(t, 0)
}

func newPublisher(t *testing.T, iss *ca.Issuer, store ca.CRLStore, interval time.Duration, now func() time.Time) *ca.CRLPublisher {
	t.Helper()
	p, err := ca.NewCRLPublisher(ca.CRLConfig{Issuer: iss, Store: store, Interval: interval, Now: now})
	if err != nil {
		t.Fatalf("NewCRLPublisher: %v", err)
	}
	return p
}

// TestCRL makes the CRL of revoked certificates under issuing CAs of each
// signature algorithm and checks it as a relying party would: signature,
// number, key identifier, times, one entry per revoked certificate with
// its date and reason, and no finding of zlint.
func TestCRL(t *testing.T) {
	for _, kt := range []keys.Type{keys.ECDSAP256, keys.ECDSAP384, keys.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			f := newPKIFixture(t, kt)
			at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			revoked, valid := f.revokedSet(t, at)
			clock := newClock(time.Now())
			p := newPublisher(t, f.h.Issuer, f.db, 3*time.Hour, clock.now)
			c, err := p.Generate(context.Background())
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			crl, err := x509.ParseRevocationList(c.DER)
			if err != nil {
				t.Fatalf("ParseRevocationList: %v", err)
			}
			if err := crl.CheckSignatureFrom(f.h.Issuer.Cert); err != nil {
				t.Errorf("CheckSignatureFrom(issuer) = %v", err)
			}
			if crl.Number.Int64() != 1 || c.Number != 1 || c.Entries != len(revoked) {
				t.Errorf("number %v (CRL says %d), %d entries; want 1 and %d", crl.Number, c.Number, c.Entries, len(revoked))
			}
			if !bytes.Equal(crl.RawIssuer, f.h.Issuer.Cert.RawSubject) || !bytes.Equal(crl.AuthorityKeyId, f.h.Issuer.Cert.SubjectKeyId) {
				t.Errorf("issuer %q, authority key ID %x; want the issuing CA's", crl.Issuer, crl.AuthorityKeyId)
			}
			wantThis := clock.now().UTC().Truncate(time.Second)
			if !crl.ThisUpdate.Equal(wantThis) || !crl.NextUpdate.Equal(wantThis.Add(6*time.Hour)) {
				t.Errorf("thisUpdate %s, nextUpdate %s; want %s and six hours later", crl.ThisUpdate, crl.NextUpdate, wantThis)
			}
			got := map[string]x509.RevocationListEntry{}
			for _, e := range crl.RevokedCertificateEntries {
				got[ca.SerialHex(e.SerialNumber)] = e
			}
			for reason, cert := range revoked {
				e, ok := got[ca.SerialHex(cert.SerialNumber)]
				if !ok {
					t.Errorf("%s: revoked certificate missing from the CRL", reason)
					continue
				}
				if e.ReasonCode != int(reason) || !e.RevocationTime.Equal(at) {
					t.Errorf("%s: entry has reason %d, time %s; want %d, %s", reason, e.ReasonCode, e.RevocationTime, reason, at)
				}
				hasExt := false
				for _, x := range e.Extensions {
					hasExt = hasExt || x.Id.Equal(oidReasonCode)
				}
				if hasExt != (reason != ca.ReasonUnspecified) {
					t.Errorf("%s: reason code extension present = %v; want it for every reason but unspecified (RFC 5280 5.3.1)", reason, hasExt)
				}
			}
			if _, ok := got[ca.SerialHex(valid.SerialNumber)]; ok {
				t.Errorf("a valid certificate is in the CRL")
			}
			if err := ca.CheckRevocationList(c.DER); err != nil {
				t.Errorf("zlint: %v", err)
			}
			if c2, err := p.Generate(context.Background()); err != nil || c2.Number != 2 {
				t.Errorf("second Generate = number %v, %v; want 2", c2, err)
			}
		})
	}
}

// TestCRLEmpty checks a CRL with nothing revoked: RFC 5280 5.1.2.6 wants
// the list of revoked certificates absent rather than empty, which zlint
// (e_crl_empty_revoked_certificates) checks.
func TestCRLEmpty(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	f.issue(t, 0)
	c, err := newPublisher(t, f.h.Issuer, f.db, 0, nil).Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(c.DER)
	if err == nil {
		err = crl.CheckSignatureFrom(f.h.Issuer.Cert)
	}
	if err != nil || len(crl.RevokedCertificateEntries) != 0 {
		t.Fatalf("empty CRL: %v; want no entries, signed by the issuing CA", err)
	}
	if err := ca.CheckRevocationList(c.DER); err != nil {
		t.Errorf("zlint: %v", err)
	}
	// The check does find what it is meant to find: an empty list.
	if err := ca.CheckRevocationList(emptyListCRL(t, c.DER)); err == nil {
		t.Errorf("CheckRevocationList accepted a CRL with an empty list of revoked certificates")
	}
}

// emptyListCRL re-encodes der with an empty revokedCertificates SEQUENCE
// (its signature no longer matches, which no CRL lint reads).
func emptyListCRL(t *testing.T, der []byte) []byte {
	t.Helper()
	var outer struct {
		TBS asn1.RawValue
		Alg asn1.RawValue
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	var fields []asn1.RawValue
	for rest := outer.TBS.Bytes; len(rest) > 0; {
		var v asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &v); err != nil {
			t.Fatal(err)
		}
		fields = append(fields, v)
	}
	// version, signature, issuer, thisUpdate, nextUpdate, [list], [0] extensions
	empty := asn1.RawValue{FullBytes: []byte{0x30, 0x00}}
	fields = append(fields[:5], append([]asn1.RawValue{empty}, fields[5:]...)...)
	var body []byte
	for _, v := range fields {
		body = append(body, v.FullBytes...)
	}
	tbs, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	outer.TBS = asn1.RawValue{FullBytes: tbs}
	out, err := asn1.Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCRLInterval(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	db := testkit.MustOpenDB(t)
	tests := []struct {
		interval, validity time.Duration
		ok                 bool
	}{
		{0, 2 * time.Hour, true}, // the default, one hour
		{time.Minute, 2 * time.Minute, true},
		{3 * 24 * time.Hour, 6 * 24 * time.Hour, true},
		{7 * 24 * time.Hour, 10 * 24 * time.Hour, true}, // capped at ten days
		{30 * time.Second, 0, false},
		{7*24*time.Hour + time.Second, 0, false},
	}
	for _, tt := range tests {
		p, err := ca.NewCRLPublisher(ca.CRLConfig{Issuer: h.Issuer, Store: db, Interval: tt.interval})
		if (err == nil) != tt.ok {
			t.Errorf("NewCRLPublisher(interval %s) error = %v, want ok = %v", tt.interval, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		c, err := p.Generate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := c.NextUpdate.Sub(c.ThisUpdate); got != tt.validity {
			t.Errorf("interval %s: CRL valid for %s, want %s", tt.interval, got, tt.validity)
		}
		if err := ca.CheckRevocationList(c.DER); err != nil {
			t.Errorf("interval %s: zlint: %v", tt.interval, err)
		}
	}
}

// TestCRLDropsExpired checks that a revoked certificate leaves the CRL
// once it has expired, and not before.
func TestCRLDropsExpired(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	short := f.issue(t, time.Hour)
	long := f.issue(t, 0)
	f.revoke(t, short, ca.ReasonSuperseded, time.Now())
	f.revoke(t, long, ca.ReasonSuperseded, time.Now())
	clock := newClock(time.Now())
	p := newPublisher(t, f.h.Issuer, f.db, time.Hour, clock.now)
	entries := func() []string {
		t.Helper()
		c, err := p.Generate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range crl.RevokedCertificateEntries {
			out = append(out, ca.SerialHex(e.SerialNumber))
		}
		return out
	}
	if got := entries(); len(got) != 2 {
		t.Fatalf("before expiry: %d entries, want 2", len(got))
	}
	clock.advance(time.Hour)
	if got := entries(); len(got) != 1 || got[0] != ca.SerialHex(long.SerialNumber) {
		t.Errorf("after expiry of one: entries %v, want only %s", got, ca.SerialHex(long.SerialNumber))
	}
}

// TestCRLNumberSurvivesRestart reopens the database between CRLs: the
// number only grows.
func TestCRLNumberSurvivesRestart(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	path := filepath.Join(t.TempDir(), "mailca.db")
	ctx := context.Background()
	var last int64
	for round := range 3 {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		p := newPublisher(t, h.Issuer, db, 0, nil)
		for range 2 {
			c, err := p.Generate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Number <= last {
				t.Errorf("round %d: CRL number %d after %d", round, c.Number, last)
			}
			last = c.Number
		}
		db.Close()
	}
	if last != 6 {
		t.Errorf("last CRL number %d, want 6", last)
	}
}

// TestCRLSerialEncoding stores serials at the edges of the DER INTEGER
// encoding (first bit set, odd number of digits, the longest) and reads
// them back from the CRL; a stored serial that is not hexadecimal stops
// generation with an error.
func TestCRLSerialEncoding(t *testing.T) {
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	path := filepath.Join(t.TempDir(), "mailca.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	serials := []string{"1", "7f", "80", "ff", "100", "8000", "abc", "7fffffffffffffffffffffffffffffffffffffff", "ffffffffffffffffffffffffffffffffffffffff"}
	for _, s := range serials {
		insertCertificateRow(t, path, h.Issuer.ID, s)
	}
	p := newPublisher(t, h.Issuer, db, 0, nil)
	c, err := p.Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Sign() <= 0 {
			t.Errorf("serial %v is not positive", e.SerialNumber)
		}
		got[e.SerialNumber.Text(16)] = true
	}
	for _, s := range serials {
		if !got[s] {
			t.Errorf("serial %s missing from the CRL (got %v)", s, got)
		}
	}
	insertCertificateRow(t, path, h.Issuer.ID, "not-hex")
	if _, err := p.Generate(context.Background()); err == nil {
		t.Errorf("Generate with a corrupt stored serial succeeded")
	}
}

// insertCertificateRow stores a revoked certificate row with this serial
// straight into the database at path.
func insertCertificateRow(t *testing.T, path, issuerID, serial string) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	now := time.Now().Unix()
	_, err = raw.Exec(`INSERT INTO certificates (serial, issuer_id, state, profile, mailbox, spki_sha256, not_before, not_after, lint_der, der,
		created_at, issued_at, revoked_at, revocation_reason, revocation_seq) VALUES (?, ?, 'issued', 'mailbox-strict', '', randomblob(32), ?, ?, x'', x'', ?, ?, ?, 4, 0)`,
		serial, issuerID, now, now+86400, now, now, now)
	if err != nil {
		t.Fatal(err)
	}
}

// TestCRLRefresh checks when a publisher makes a new CRL: when there is
// none, when a revocation is missing from it, when it is an interval old;
// and that it takes over a newer CRL stored by another process.
func TestCRLRefresh(t *testing.T) {
	f := newPKIFixture(t, keys.ECDSAP256)
	ctx := context.Background()
	clock := newClock(time.Now())
	p := newPublisher(t, f.h.Issuer, f.db, time.Hour, clock.now)
	refresh := func(wantMade bool) *ca.CRL {
		t.Helper()
		c, made, err := p.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if made != wantMade {
			t.Errorf("Refresh made a CRL = %v, want %v", made, wantMade)
		}
		return c
	}
	first := refresh(true)
	if again := refresh(false); again.Number != first.Number {
		t.Errorf("unchanged: CRL %d, want %d", again.Number, first.Number)
	}
	cert := f.issue(t, 0)
	f.revoke(t, cert, ca.ReasonKeyCompromise, clock.now())
	c := refresh(true)
	if c.Entries != 1 {
		t.Errorf("after a revocation: %d entries, want 1", c.Entries)
	}

	// Another process (here another publisher on the same store) stores a
	// newer CRL: it becomes current without a new one being made.
	other, err := newPublisher(t, f.h.Issuer, f.db, time.Hour, clock.now).Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := refresh(false); got.Number != other.Number {
		t.Errorf("after another process's CRL %d: current is %d", other.Number, got.Number)
	}
	if cur, _ := p.Current(ctx); cur.Number != other.Number || !bytes.Equal(cur.DER, other.DER) {
		t.Errorf("Current() is CRL %d, want %d", cur.Number, other.Number)
	}
	clock.advance(time.Hour)
	if got := refresh(true); got.Number <= other.Number {
		t.Errorf("after an interval: CRL %d, want one after %d", got.Number, other.Number)
	}
	if _, err := p.CurrentCRL(ctx, "0123456789abcdef"); !errors.Is(err, ca.ErrUnknownIssuer) {
		t.Errorf("CurrentCRL(another issuer) = %v, want ErrUnknownIssuer", err)
	}
}

// writePEM writes certificates (or one CRL) as PEM into dir/name.
func writePEM(t *testing.T, dir, name, typ string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCRLOpenSSL has openssl verify the CRL against the issuing CA and
// list its entries: every revoked serial with its reason.
func TestCRLOpenSSL(t *testing.T) {
	openssl := clients.RequireTool(t, "openssl")
	f := newPKIFixture(t, keys.ECDSAP256)
	revoked, _ := f.revokedSet(t, time.Now())
	c, err := newPublisher(t, f.h.Issuer, f.db, 0, nil).Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crlFile := writePEM(t, dir, "crl.pem", "X509 CRL", c.DER)
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", f.h.Issuer.Cert.Raw, f.h.Root.Raw)
	out, err := exec.Command(openssl, "crl", "-in", crlFile, "-CAfile", caFile, "-verify", "-noout", "-text").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "verify OK") {
		t.Errorf("openssl crl did not verify the CRL:\n%s", out)
	}
	got := opensslCRLEntries(string(out))
	names := map[ca.RevocationReason]string{
		ca.ReasonUnspecified: "", ca.ReasonKeyCompromise: "Key Compromise", ca.ReasonAffiliationChanged: "Affiliation Changed",
		ca.ReasonSuperseded: "Superseded", ca.ReasonCessationOfOperation: "Cessation Of Operation", ca.ReasonPrivilegeWithdrawn: "Privilege Withdrawn",
	}
	if len(got) != len(revoked) {
		t.Errorf("openssl lists %d entries, want %d:\n%s", len(got), len(revoked), out)
	}
	for reason, cert := range revoked {
		serial := strings.ToUpper(cert.SerialNumber.Text(16))
		if r, ok := got[serial]; !ok || r != names[reason] {
			t.Errorf("openssl shows %s with reason %q (listed %v), want %q", serial, r, ok, names[reason])
		}
	}
	// The same CRL under another CA does not verify.
	other := testkit.NewHierarchy(t, keys.ECDSAP256)
	otherFile := writePEM(t, dir, "other.pem", "CERTIFICATE", other.Issuer.Cert.Raw, other.Root.Raw)
	if out, err := exec.Command(openssl, "crl", "-in", crlFile, "-CAfile", otherFile, "-verify", "-noout").CombinedOutput(); err == nil && strings.Contains(string(out), "verify OK") {
		t.Errorf("openssl verified the CRL against another CA:\n%s", out)
	}
}

// opensslCRLEntries reads the output of openssl crl -text: serial (upper
// case hex, no leading zeros) to the reason's text, "" when there is none.
func opensslCRLEntries(out string) map[string]string {
	got := map[string]string{}
	serialRE := regexp.MustCompile(`Serial Number: ([0-9A-F]+)`)
	var last string
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if m := serialRE.FindStringSubmatch(line); m != nil {
			last = strings.TrimLeft(m[1], "0")
			got[last] = ""
		}
		if strings.Contains(line, "CRL Reason Code") && last != "" && i+1 < len(lines) {
			got[last] = strings.TrimSpace(lines[i+1])
		}
	}
	return got
}

// TestCRLNSS imports the CRL into an NSS database (as Thunderbird would
// after fetching it) and has certutil check a revoked certificate and a
// valid one for email signing.
func TestCRLNSS(t *testing.T) {
	for _, tool := range []string{"certutil", "crlutil"} {
		clients.RequireTool(t, tool)
	}
	f := newPKIFixture(t, keys.ECDSAP256)
	revoked := f.issue(t, 0)
	valid := f.issue(t, 0)
	f.revoke(t, revoked, ca.ReasonKeyCompromise, time.Now().Add(-time.Minute))
	c, err := newPublisher(t, f.h.Issuer, f.db, 0, nil).Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crlFile := filepath.Join(dir, "crl.der")
	if err := os.WriteFile(crlFile, c.DER, 0o600); err != nil {
		t.Fatal(err)
	}
	db := "sql:" + dir
	run := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) {
		t.Helper()
		if out, err := run(args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	must("certutil", "-N", "-d", db, "--empty-password")
	must("certutil", "-A", "-d", db, "-n", "root", "-t", "C,C,C", "-i", writePEM(t, dir, "root.pem", "CERTIFICATE", f.h.Root.Raw))
	must("certutil", "-A", "-d", db, "-n", "issuing", "-t", ",,", "-i", writePEM(t, dir, "issuing.pem", "CERTIFICATE", f.h.Issuer.Cert.Raw))
	must("certutil", "-A", "-d", db, "-n", "revoked", "-t", ",,", "-i", writePEM(t, dir, "revoked.pem", "CERTIFICATE", revoked.Raw))
	must("certutil", "-A", "-d", db, "-n", "valid", "-t", ",,", "-i", writePEM(t, dir, "valid.pem", "CERTIFICATE", valid.Raw))
	// Before the CRL, both are valid: the failure below is the CRL's doing.
	must("certutil", "-V", "-d", db, "-n", "revoked", "-u", "S")
	must("crlutil", "-I", "-d", db, "-i", crlFile)
	if out, err := run("crlutil", "-L", "-d", db); err != nil || !strings.Contains(out, "issuing") {
		t.Fatalf("crlutil -L does not list the imported CRL: %v\n%s", err, out)
	}
	out, err := run("certutil", "-V", "-d", db, "-n", "revoked", "-u", "S")
	if err == nil || !strings.Contains(out, "revoked") {
		t.Errorf("certutil -V of the revoked certificate: %v\n%s\nwant a revoked error", err, out)
	}
	must("certutil", "-V", "-d", db, "-n", "valid", "-u", "S")
}

// TestRevocationReasons checks the names and the refusal of the others.
func TestRevocationReasons(t *testing.T) {
	tests := []struct {
		in   string
		want ca.RevocationReason
		ok   bool
	}{
		{"unspecified", ca.ReasonUnspecified, true},
		{"keyCompromise", ca.ReasonKeyCompromise, true},
		{"key-compromise", ca.ReasonKeyCompromise, true},
		{"KEYCOMPROMISE", ca.ReasonKeyCompromise, true},
		{"affiliationChanged", ca.ReasonAffiliationChanged, true},
		{"superseded", ca.ReasonSuperseded, true},
		{"cessation_of_operation", ca.ReasonCessationOfOperation, true},
		{"privilegeWithdrawn", ca.ReasonPrivilegeWithdrawn, true},
		{"certificateHold", 0, false},
		{"cACompromise", 0, false},
		{"removeFromCRL", 0, false},
		{"aACompromise", 0, false},
		{"", 0, false},
		{"1", 0, false},
	}
	for _, tt := range tests {
		got, err := ca.ParseRevocationReason(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRevocationReason(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
			continue
		}
		if err != nil {
			// The error is for an administrator: it must name every allowed reason.
			for _, name := range ca.RevocationReasons() {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("ParseRevocationReason(%q) error %q does not name %s", tt.in, err, name)
				}
			}
		}
	}
	for _, code := range []int{2, 6, 7, 8, 10, -1} {
		if ca.RevocationReason(code).Allowed() {
			t.Errorf("RevocationReason(%d).Allowed() = true", code)
		}
	}
	if s := ca.RevocationReason(6).String(); s != "reason(6)" {
		t.Errorf("RevocationReason(6).String() = %q", s)
	}
}

// TestCRLLarge makes a CRL of 100,000 entries, whose lengths need the
// longer DER length forms, and has Go and openssl read and verify it.
func TestCRLLarge(t *testing.T) {
	const n = 100_000
	h := testkit.NewHierarchy(t, keys.ECDSAP256)
	db := openDBWithRevoked(t, h.Issuer.ID, n)
	c, err := newPublisher(t, h.Issuer, db, 0, nil).Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(c.DER)
	if err == nil {
		err = crl.CheckSignatureFrom(h.Issuer.Cert)
	}
	if err != nil || len(crl.RevokedCertificateEntries) != n {
		t.Fatalf("ParseRevocationList: %v; want %d entries signed by the issuing CA", err, n)
	}
	reasons := map[int]int{}
	for _, e := range crl.RevokedCertificateEntries {
		reasons[e.ReasonCode]++
	}
	for _, code := range []int{0, 1, 3, 4, 5, 9} {
		if reasons[code] < n/6 || reasons[code] > n/6+1 {
			t.Errorf("%d entries with reason %d, want about %d", reasons[code], code, n/6)
		}
	}
	openssl := clients.RequireTool(t, "openssl")
	dir := t.TempDir()
	crlFile := filepath.Join(dir, "crl.der")
	if err := os.WriteFile(crlFile, c.DER, 0o600); err != nil {
		t.Fatal(err)
	}
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", h.Issuer.Cert.Raw)
	out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", crlFile, "-CAfile", caFile, "-verify", "-noout").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verify OK") {
		t.Errorf("openssl crl -verify: %v\n%s", err, out)
	}
}
