package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"sort"
)

// Validation is the kind of identity a certificate asserts (S/MIME BR 1.3).
type Validation int

const (
	// MailboxValidated asserts control of the mailbox only.
	MailboxValidated Validation = iota + 1
	// OrganizationValidated asserts the mailbox and the organisation it belongs to.
	OrganizationValidated
	// SponsorValidated asserts the mailbox, the organisation, and a natural
	// person the organisation vouches for (given name and surname).
	SponsorValidated
)

// Generation is the S/MIME BR profile generation (section 7.1.6.1).
// Legacy is left out: the BR deprecate it.
type Generation int

const (
	// Strict allows only what the BR require or allow for email protection.
	Strict Generation = iota + 1
	// Multipurpose allows a few more uses (such as client authentication).
	Multipurpose
)

// Profile is one of the S/MIME BR certificate profiles for subscribers.
type Profile struct {
	Name       string
	Validation Validation
	Generation Generation
	// Policy is the CA/B Forum reserved policy identifier that marks the
	// certificate as issued under the S/MIME BR and names its profile.
	Policy x509.OID
}

// The CA/B Forum reserved policy identifiers, 2.23.140.1.5.V.G, where V is
// the validation type and G the generation (S/MIME BR 7.1.6.1).
func smimePolicy(v Validation, g Generation) x509.OID {
	gen := map[Generation]uint64{Multipurpose: 2, Strict: 3}[g]
	oid, err := x509.OIDFromInts([]uint64{2, 23, 140, 1, 5, uint64(v), gen})
	if err != nil {
		panic(err) // constant input
	}
	return oid
}

var profiles = map[string]Profile{}

func init() {
	for _, v := range []struct {
		prefix string
		v      Validation
	}{{"mailbox", MailboxValidated}, {"organization", OrganizationValidated}, {"sponsor", SponsorValidated}} {
		for _, g := range []struct {
			suffix string
			g      Generation
		}{{"strict", Strict}, {"multipurpose", Multipurpose}} {
			name := v.prefix + "-" + g.suffix
			profiles[name] = Profile{Name: name, Validation: v.v, Generation: g.g, Policy: smimePolicy(v.v, g.g)}
		}
	}
}

// DefaultProfile is the profile used when none is named: the narrowest one,
// which every organisation can issue without vetting more than the mailbox.
const DefaultProfile = "mailbox-strict"

// ProfileByName returns the profile called name.
func ProfileByName(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, &RequestError{Reason: UnknownProfile, Detail: fmt.Sprintf("%q (want one of %v)", name, ProfileNames())}
	}
	return p, nil
}

// ProfileNames lists the names of all profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// keyUsage returns the key usage for a subscriber key (S/MIME BR 7.1.2.3(e)):
// signing and key transport for RSA, signing and key agreement for EC. The
// BR allow a single-use certificate too; mail clients expect both uses.
func keyUsage(pub crypto.PublicKey) (x509.KeyUsage, error) {
	switch pub.(type) {
	case *rsa.PublicKey:
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, nil
	case *ecdsa.PublicKey:
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement, nil
	}
	return 0, &RequestError{Reason: WeakKey, Detail: fmt.Sprintf("unsupported key type %T", pub)}
}
