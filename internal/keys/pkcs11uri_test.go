package keys_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/keys"
)

func TestParsePKCS11URI(t *testing.T) {
	slot := func(n int) *int { return &n }
	tests := []struct {
		name string
		in   string
		want keys.PKCS11URI
	}{
		{"token only", "pkcs11:token=mailca", keys.PKCS11URI{Token: "mailca"}},
		{"token and object", "pkcs11:token=mailca;object=issuing-ca", keys.PKCS11URI{Token: "mailca", Object: "issuing-ca"}},
		{"id bytes", "pkcs11:token=mailca;id=%01%02%fF;type=private", keys.PKCS11URI{Token: "mailca", ID: []byte{1, 2, 0xff}, Type: "private"}},
		{"percent-decoded label", "pkcs11:token=My%20CA%3B%3F;object=a%2Fb", keys.PKCS11URI{Token: "My CA;?", Object: "a/b"}},
		{"plus stays plus", "pkcs11:token=a+b", keys.PKCS11URI{Token: "a+b"}},
		{"upper-case scheme and names", "PKCS11:Token=t;OBJECT=o", keys.PKCS11URI{Token: "t", Object: "o"}},
		{"module and pin source", "pkcs11:token=t;object=o?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin",
			keys.PKCS11URI{Token: "t", Object: "o", ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PinSource: "file:/run/secrets/pin"}},
		{"pin source as path", "pkcs11:token=t?pin-source=/etc/pin", keys.PKCS11URI{Token: "t", PinSource: "/etc/pin"}},
		{"pin source file URL", "pkcs11:token=t?pin-source=file:///etc/pin", keys.PKCS11URI{Token: "t", PinSource: "file:///etc/pin"}},
		{"pin value", "pkcs11:token=t?pin-value=12%2634", keys.PKCS11URI{Token: "t", PinValue: "12&34"}},
		{"serial", "pkcs11:serial=0123abcd;object=k", keys.PKCS11URI{Serial: "0123abcd", Object: "k"}},
		{"slot id", "pkcs11:slot-id=7", keys.PKCS11URI{SlotID: slot(7)}},
		{"ignored standard and vendor attributes", "pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2;token=t;x-vendor=1?x-q=2", keys.PKCS11URI{Token: "t"}},
		{"equals in value", "pkcs11:token=a=b", keys.PKCS11URI{Token: "a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keys.ParsePKCS11URI(tt.in)
			if err != nil {
				t.Fatalf("ParsePKCS11URI(%q) = %v", tt.in, err)
			}
			if !sameURI(got, &tt.want) {
				t.Errorf("ParsePKCS11URI(%q) = %+v, want %+v", tt.in, *got, tt.want)
			}
			// What String renders parses back to the same URI, less the PIN.
			again, err := keys.ParsePKCS11URI(got.String())
			if err != nil {
				t.Fatalf("ParsePKCS11URI(String() = %q) = %v", got.String(), err)
			}
			want := *got
			want.PinValue = ""
			if !sameURI(again, &want) {
				t.Errorf("round trip through %q = %+v, want %+v", got.String(), *again, want)
			}
		})
	}
}

func sameURI(a, b *keys.PKCS11URI) bool {
	if (a.SlotID == nil) != (b.SlotID == nil) || a.SlotID != nil && *a.SlotID != *b.SlotID {
		return false
	}
	return a.Token == b.Token && a.Serial == b.Serial && a.Object == b.Object && bytes.Equal(a.ID, b.ID) &&
		a.Type == b.Type && a.ModulePath == b.ModulePath && a.PinSource == b.PinSource && a.PinValue == b.PinValue
}

func TestParsePKCS11URIErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		attr string // URIError.Attr wanted
	}{
		{"not a pkcs11 URI", "file:/etc/key.pem", ""},
		{"empty", "", ""},
		{"no token", "pkcs11:object=k", ""},
		{"nothing", "pkcs11:", ""},
		{"space", "pkcs11:token=my ca", ""},
		{"fragment", "pkcs11:token=t#x", ""},
		{"non-ASCII", "pkcs11:token=ü", ""},
		{"doubled separator", "pkcs11:token=t;;object=k", ""},
		{"missing equals", "pkcs11:token", "token"},
		{"repeated attribute", "pkcs11:token=a;token=b", "token"},
		{"bad escape", "pkcs11:token=%zz", "token"},
		{"truncated escape", "pkcs11:token=t;id=%0", "id"},
		{"empty id", "pkcs11:token=t;id=", "id"},
		{"unknown attribute", "pkcs11:token=t;colour=red", "colour"},
		{"bad type", "pkcs11:token=t;type=secret", "type"},
		{"bad slot", "pkcs11:slot-id=-1", "slot-id"},
		{"query attribute in path", "pkcs11:token=t;module-path=/x.so", "module-path"},
		{"path attribute in query", "pkcs11:token=t?object=k", "object"},
		{"relative module", "pkcs11:token=t?module-path=libsofthsm2.so", "module-path"},
		{"module name", "pkcs11:token=t?module-name=softhsm2", "module-name"},
		{"pin command", "pkcs11:token=t?pin-source=%7C/bin/echo%201234", "pin-source"},
		{"relative pin file", "pkcs11:token=t?pin-source=file:pin.txt", "pin-source"},
		{"pin file with host", "pkcs11:token=t?pin-source=file://host/pin", "pin-source"},
		{"bad pin escape", "pkcs11:token=t?pin-value=12%G4", "pin-value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := keys.ParsePKCS11URI(tt.in)
			var uerr *keys.URIError
			if !errors.As(err, &uerr) {
				t.Fatalf("ParsePKCS11URI(%q) = %+v, %v; want a *keys.URIError", tt.in, u, err)
			}
			if uerr.Attr != tt.attr {
				t.Errorf("ParsePKCS11URI(%q) error names attribute %q, want %q (%v)", tt.in, uerr.Attr, tt.attr, err)
			}
		})
	}
}

func TestPKCS11URIErrorsHidePIN(t *testing.T) {
	const pin = "s3cret%G"
	_, err := keys.ParsePKCS11URI("pkcs11:token=t?pin-value=" + pin)
	if err == nil {
		t.Fatal("a bad escape in pin-value parsed")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the PIN", err)
	}
	u, err := keys.ParsePKCS11URI("pkcs11:token=t;object=k?pin-value=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u.String(), "s3cret") || strings.Contains(u.String(), "pin-value") {
		t.Errorf("String() = %q, shows the PIN", u.String())
	}
	if err := u.CheckStorable(); !errors.Is(err, keys.ErrPINInURI) {
		t.Errorf("CheckStorable() = %v, want ErrPINInURI", err)
	}
	u.PinValue = ""
	if err := u.CheckStorable(); err != nil {
		t.Errorf("CheckStorable() without a PIN = %v", err)
	}
}

func FuzzParsePKCS11URI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=mailca;object=issuing-ca",
		"pkcs11:token=t;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/p",
		"pkcs11:slot-id=3?pin-value=1234",
		"pkcs11:token=%zz",
		"pkcs11:serial=1;x-a=b?x-c=d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := keys.ParsePKCS11URI(s)
		if err != nil {
			var uerr *keys.URIError
			if !errors.As(err, &uerr) {
				t.Fatalf("ParsePKCS11URI(%q) error %v is not a *keys.URIError", s, err)
			}
			return
		}
		// A URI that parses renders to one that parses to the same thing.
		again, err := keys.ParsePKCS11URI(u.String())
		if err != nil {
			t.Fatalf("ParsePKCS11URI(%q).String() = %q, which does not parse: %v", s, u.String(), err)
		}
		want := *u
		want.PinValue = ""
		if !sameURI(again, &want) {
			t.Fatalf("round trip of %q through %q = %+v, want %+v", s, u.String(), *again, want)
		}
	})
}
