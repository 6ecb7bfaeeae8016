package keys

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// PKCS11URI is a parsed PKCS#11 URI (RFC 7512) naming a token and,
// optionally, a key on it:
//
//	pkcs11:token=mailca;object=issuing-ca;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so
//
// Only the attributes mailca uses are kept; vendor attributes (x-...) are
// accepted and ignored, any other unknown attribute is an error.
type PKCS11URI struct {
	// Token selection: label, serial number or slot id. Serial and SlotID
	// are used only when Token is empty.
	Token  string
	Serial string
	SlotID *int

	// Key selection: CKA_LABEL, CKA_ID and the object class ("private",
	// "public", "cert", "secret-key" or "data"; empty means any).
	Object string
	ID     []byte
	Type   string

	// ModulePath is the PKCS#11 library to load; empty means the
	// configured default.
	ModulePath string

	// PinSource names a file whose first line is the user PIN, as
	// "file:/path" or a plain absolute path.
	PinSource string

	// PinValue is the user PIN written into the URI. It is accepted only
	// from the command line (see CheckStorable) and never rendered by
	// String.
	PinValue string `json:"-"`
}

// ErrPINInURI is returned by CheckStorable for a URI that carries its PIN.
var ErrPINInURI = errors.New("keys: a PKCS#11 URI in the configuration may not carry pin-value: set MAILCA_PKCS11_PIN, use pin-source=file:PATH, or set [pkcs11] pin_file")

// IsPKCS11URI reports whether s is meant as a PKCS#11 URI rather than a
// key file name.
func IsPKCS11URI(s string) bool {
	return len(s) >= 7 && strings.EqualFold(s[:7], "pkcs11:")
}

// URIError reports a malformed PKCS#11 URI. Its message names the
// attribute at fault but never quotes a PIN.
type URIError struct {
	Attr   string // the attribute at fault; empty for the URI as a whole
	Reason string
}

func (e *URIError) Error() string {
	if e.Attr == "" {
		return "keys: PKCS#11 URI: " + e.Reason
	}
	return "keys: PKCS#11 URI: " + e.Attr + ": " + e.Reason
}

// ParsePKCS11URI parses s as an RFC 7512 PKCS#11 URI. Attribute values are
// percent-decoded; a repeated attribute, an unknown one, a bad percent
// escape, an empty token selection or an unsupported pin-source is a
// *URIError. A URI with pin-value parses; CheckStorable refuses it where
// the URI is read from the configuration file.
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	if !IsPKCS11URI(s) {
		return nil, &URIError{Reason: `must start with "pkcs11:"`}
	}
	rest := s[len("pkcs11:"):]
	for _, r := range rest {
		if r <= ' ' || r == 0x7f || r > 0x7e {
			return nil, &URIError{Reason: "contains a space, control or non-ASCII character; percent-encode it"}
		}
	}
	if strings.ContainsRune(rest, '#') {
		return nil, &URIError{Reason: "contains '#'; percent-encode it as %23"}
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{}
	seen := map[string]bool{}
	if path != "" {
		for _, attr := range strings.Split(path, ";") {
			if err := u.set(attr, false, seen); err != nil {
				return nil, err
			}
		}
	}
	if query != "" {
		for _, attr := range strings.Split(query, "&") {
			if err := u.set(attr, true, seen); err != nil {
				return nil, err
			}
		}
	}
	if u.Token == "" && u.Serial == "" && u.SlotID == nil {
		return nil, &URIError{Reason: "names no token: add token=LABEL (or serial= or slot-id=)"}
	}
	return u, nil
}

func (u *PKCS11URI) set(attr string, inQuery bool, seen map[string]bool) error {
	if attr == "" {
		return &URIError{Reason: "empty attribute (doubled ';' or '&')"}
	}
	name, raw, ok := strings.Cut(attr, "=")
	if !ok {
		return &URIError{Attr: safeName(name), Reason: "missing '='"}
	}
	name = strings.ToLower(name)
	if seen[name] {
		return &URIError{Attr: safeName(name), Reason: "given more than once"}
	}
	seen[name] = true
	secret := name == "pin-value"
	v, err := url.PathUnescape(raw)
	if err != nil {
		if secret {
			return &URIError{Attr: name, Reason: "invalid percent-encoding"}
		}
		return &URIError{Attr: safeName(name), Reason: "invalid percent-encoding in " + strconv.Quote(raw)}
	}
	isQuery := map[string]bool{"module-path": true, "module-name": true, "pin-source": true, "pin-value": true}
	if isQuery[name] != inQuery && !strings.HasPrefix(name, "x-") {
		if inQuery {
			return &URIError{Attr: safeName(name), Reason: "belongs in the path part (before '?'), separated by ';'"}
		}
		return &URIError{Attr: name, Reason: "belongs in the query part (after '?'), separated by '&'"}
	}
	switch name {
	case "token":
		u.Token = v
	case "serial":
		u.Serial = v
	case "slot-id":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return &URIError{Attr: name, Reason: fmt.Sprintf("%q is not a slot number", v)}
		}
		u.SlotID = &n
	case "object":
		u.Object = v
	case "id":
		if v == "" {
			return &URIError{Attr: name, Reason: "is empty"}
		}
		u.ID = []byte(v)
	case "type":
		switch v {
		case "private", "public", "cert", "secret-key", "data":
			u.Type = v
		default:
			return &URIError{Attr: name, Reason: fmt.Sprintf("%q is not one of private, public, cert, secret-key, data", v)}
		}
	case "module-path":
		if !strings.HasPrefix(v, "/") {
			return &URIError{Attr: name, Reason: "must be an absolute path"}
		}
		u.ModulePath = v
	case "module-name":
		// A bare library name would make mailca search the system's
		// library path; an absolute module-path says exactly what is loaded.
		return &URIError{Attr: name, Reason: "is not supported; give module-path=/absolute/path/to/module.so"}
	case "pin-source":
		if _, err := pinFile(v); err != nil {
			return err
		}
		u.PinSource = v
	case "pin-value":
		u.PinValue = v
	case "manufacturer", "model", "library-manufacturer", "library-description", "library-version",
		"slot-description", "slot-manufacturer":
		// Valid RFC 7512 attributes that mailca does not select on.
	default:
		if !strings.HasPrefix(name, "x-") {
			return &URIError{Attr: safeName(name), Reason: "unknown attribute"}
		}
	}
	return nil
}

// safeName keeps an attribute name fit for an error message.
func safeName(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// pinFile returns the file a pin-source value names: "file:/path",
// "file:///path" or "/path".
func pinFile(src string) (string, error) {
	p := src
	if rest, ok := strings.CutPrefix(src, "file:"); ok {
		p = rest
		if strings.HasPrefix(p, "//") {
			// file://host/path: only an empty host (the local machine).
			p = strings.TrimPrefix(p, "//")
			if !strings.HasPrefix(p, "/") {
				return "", &URIError{Attr: "pin-source", Reason: "file URI with a host is not supported"}
			}
		}
	}
	if !strings.HasPrefix(p, "/") {
		return "", &URIError{Attr: "pin-source", Reason: "must be file:/absolute/path (commands and relative paths are not supported)"}
	}
	return p, nil
}

// CheckStorable returns ErrPINInURI when u carries a pin-value: a URI that
// is written to or read from the configuration file must not hold the PIN.
func (u *PKCS11URI) CheckStorable() error {
	if u.PinValue != "" {
		return ErrPINInURI
	}
	return nil
}

// String renders u as a PKCS#11 URI, leaving out the PIN value.
func (u *PKCS11URI) String() string {
	var path []string
	add := func(name, v string) {
		if v != "" {
			path = append(path, name+"="+pctEncode(v, false))
		}
	}
	add("token", u.Token)
	add("serial", u.Serial)
	if u.SlotID != nil {
		path = append(path, "slot-id="+strconv.Itoa(*u.SlotID))
	}
	add("object", u.Object)
	if len(u.ID) > 0 {
		var b strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&b, "%%%02x", c)
		}
		path = append(path, "id="+b.String())
	}
	add("type", u.Type)
	var query []string
	if u.ModulePath != "" {
		query = append(query, "module-path="+pctEncode(u.ModulePath, true))
	}
	if u.PinSource != "" {
		query = append(query, "pin-source="+pctEncode(u.PinSource, true))
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// pctEncode percent-encodes v for a PKCS#11 URI path attribute or, when
// inQuery, a query attribute (where '/' may stay as it is).
func pctEncode(v string, inQuery bool) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._~:@!$'()*+,", c) >= 0,
			inQuery && c == '/':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
