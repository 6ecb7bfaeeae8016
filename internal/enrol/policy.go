package enrol

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/p12"
)

// Policy is an Enrolment Policy: every setting that varies between
// organisations and rollouts. Policies are versioned: saving one makes a new
// version, and each enrolment records the version it ran under.
type Policy struct {
	Name        string `json:"name" yaml:"name"`
	Version     int    `json:"version,omitempty" yaml:"version,omitempty"` // set by the store
	Description string `json:"description,omitempty" yaml:"description,omitempty"`

	Channels Channels `json:"channels" yaml:"channels"`
	// InvitationLifetime is how long an invitation link stays valid.
	InvitationLifetime Duration `json:"invitation_lifetime" yaml:"invitation_lifetime"`
	// ActivationLifetime is how long an activation link stays valid. The
	// activation link validates the mailbox, so the BR (3.2.2.2) cap it at
	// 24 hours.
	ActivationLifetime Duration `json:"activation_lifetime" yaml:"activation_lifetime"`

	Fields         []Field  `json:"fields,omitempty" yaml:"fields,omitempty"`
	AllowedDomains []string `json:"allowed_domains,omitempty" yaml:"allowed_domains,omitempty"` // empty: any domain

	Approval Approval `json:"approval" yaml:"approval"`
	// Notify lists the mailboxes told of each new application.
	Notify []string `json:"notify,omitempty" yaml:"notify,omitempty"`

	KeyModes     []KeyMode `json:"key_modes" yaml:"key_modes"`
	Profile      string    `json:"profile" yaml:"profile"`
	ValidityDays int       `json:"validity_days" yaml:"validity_days"`
	P12Format    string    `json:"p12_format" yaml:"p12_format"`

	Terms        Terms         `json:"terms" yaml:"terms"`
	Templates    string        `json:"templates,omitempty" yaml:"templates,omitempty"` // template set; empty: the defaults
	ReferralKeys []ReferralKey `json:"referral_keys,omitempty" yaml:"referral_keys,omitempty"`

	// Renewal configures the renewal that an expiry reminder offers.
	Renewal Renewal `json:"renewal,omitzero" yaml:"renewal,omitempty"`
	// RevokeOnRenewal revokes the renewed certificate (reason superseded)
	// when its renewal is issued; by default it stays valid until it expires.
	RevokeOnRenewal bool `json:"revoke_on_renewal,omitempty" yaml:"revoke_on_renewal,omitempty"`
}

// RenewalApproval says who decides a renewal.
type RenewalApproval string

const (
	RenewSame      RenewalApproval = "same"      // as the policy approves an invitation
	RenewAutomatic RenewalApproval = "automatic" // approved on submission
)

// Renewal configures renewals.
type Renewal struct {
	Approval RenewalApproval `json:"approval,omitempty" yaml:"approval,omitempty"` // default same
}

// Channels are the ways a person may start an enrolment.
type Channels struct {
	Invitation bool `json:"invitation" yaml:"invitation"` // an administrator invites by email
	Referral   bool `json:"referral" yaml:"referral"`     // an existing site sends a signed link
	Open       bool `json:"open" yaml:"open"`             // anyone verifies a mailbox in an allowed domain
}

// Field is one field of the enrolment form. The standard fields are
// "given_name" and "surname"; any other name is a custom field.
type Field struct {
	Name     string `json:"name" yaml:"name"`
	Label    string `json:"label,omitempty" yaml:"label,omitempty"`
	Required bool   `json:"required,omitempty" yaml:"required,omitempty"`
	// Editable fields may be changed by the user; others show the value
	// from the invitation read-only.
	Editable  bool   `json:"editable,omitempty" yaml:"editable,omitempty"`
	Pattern   string `json:"pattern,omitempty" yaml:"pattern,omitempty"` // RE2, matched against the whole value
	MaxLength int    `json:"max_length,omitempty" yaml:"max_length,omitempty"`
	Help      string `json:"help,omitempty" yaml:"help,omitempty"`
}

// Standard field names.
const (
	FieldGivenName = "given_name"
	FieldSurname   = "surname"
)

// ApprovalMode says who decides an application.
type ApprovalMode string

const (
	ApproveManual      ApprovalMode = "manual"            // approvers decide each one
	ApproveAutomatic   ApprovalMode = "automatic"         // approved on submission
	ApproveAutoDomains ApprovalMode = "automatic-domains" // automatic for Approval.Domains, manual otherwise
	ApprovePreApproved ApprovalMode = "pre-approved"      // invitations count as approval: one stage
)

// Approval configures the approval stage.
type Approval struct {
	Mode    ApprovalMode `json:"mode" yaml:"mode"`
	Domains []string     `json:"domains,omitempty" yaml:"domains,omitempty"` // for automatic-domains
	// Required is N in N-of-M approval: how many distinct approvers must
	// approve. Default 1.
	Required int `json:"required,omitempty" yaml:"required,omitempty"`
	// SeparateDuties forbids an approver from approving an application
	// they invited.
	SeparateDuties bool `json:"separate_duties,omitempty" yaml:"separate_duties,omitempty"`
}

// KeyMode is a way for the user to get a key pair.
type KeyMode string

const (
	KeyServer KeyMode = "server" // mailca generates the key and delivers a PKCS#12
	KeyCSR    KeyMode = "csr"    // the user pastes or uploads a PKCS#10 request
)

// Terms are the subscriber agreement the user must accept (S/MIME BR 4.1.2, 9.6.3).
type Terms struct {
	Version string `json:"version" yaml:"version"`
	Text    string `json:"text" yaml:"text"`
}

// ReferralKey is a site allowed to refer users with signed links: HS256
// JWS under Secret (base64url, at least 32 bytes), identified by ID ("kid").
type ReferralKey struct {
	ID     string `json:"id" yaml:"id"`
	Secret string `json:"secret" yaml:"secret"`
}

// Duration is a time.Duration written as "72h" or "30m" in policy files.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write e.g. \"24h\" or \"336h\")", b)
	}
	*d = Duration(v)
	return nil
}

// DefaultPolicy is the policy mailca init creates: invitations only, manual
// approval, both key modes, the default profile.
func DefaultPolicy() *Policy {
	return &Policy{
		Name:               "default",
		Description:        "Invitations by email, approved by an RA officer.",
		Channels:           Channels{Invitation: true},
		InvitationLifetime: Duration(14 * 24 * time.Hour),
		ActivationLifetime: Duration(24 * time.Hour),
		Fields: []Field{
			{Name: FieldGivenName, Label: "Given name", Editable: true},
			{Name: FieldSurname, Label: "Surname", Editable: true},
		},
		Approval:     Approval{Mode: ApproveManual, Required: 1},
		KeyModes:     []KeyMode{KeyServer, KeyCSR},
		Profile:      ca.DefaultProfile,
		ValidityDays: 365,
		P12Format:    "legacy",
		Terms: Terms{Version: "1", Text: "I will protect the private key of my certificate, use the certificate only for my own email, " +
			"and ask for its revocation at once if the key may have been disclosed or the mailbox is no longer mine."},
	}
}

var policyName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// FieldError is a validation problem with one setting of a policy.
type FieldError struct {
	Field string // the setting, as in the policy file: "approval.mode"
	Msg   string
}

// ValidationError lists every problem found in a policy.
type ValidationError struct{ Problems []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Msg
	}
	return "enrol: invalid policy: " + strings.Join(parts, "; ")
}

// Validate checks every setting, fills defaults for zero values, and
// returns a *ValidationError naming each problem.
func (p *Policy) Validate() error {
	var probs []FieldError
	bad := func(field, format string, args ...any) {
		probs = append(probs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if !policyName.MatchString(p.Name) {
		bad("name", "must be 1 to 63 lower-case letters, digits and dashes")
	}
	if !p.Channels.Invitation && !p.Channels.Referral && !p.Channels.Open {
		bad("channels", "at least one channel must be allowed")
	}
	if p.InvitationLifetime == 0 {
		p.InvitationLifetime = Duration(14 * 24 * time.Hour)
	}
	if d := time.Duration(p.InvitationLifetime); d < time.Hour || d > 90*24*time.Hour {
		bad("invitation_lifetime", "must be between 1h and 2160h (90 days)")
	}
	if p.ActivationLifetime == 0 {
		p.ActivationLifetime = Duration(24 * time.Hour)
	}
	if d := time.Duration(p.ActivationLifetime); d < 10*time.Minute || d > 24*time.Hour {
		bad("activation_lifetime", "must be between 10m and 24h: the activation link validates the mailbox (S/MIME BR 3.2.2.2)")
	}
	seen := map[string]bool{}
	for i, f := range p.Fields {
		where := fmt.Sprintf("fields[%d]", i)
		if !fieldName.MatchString(f.Name) {
			bad(where+".name", "must be lower-case letters, digits and underscores, starting with a letter")
		}
		if seen[f.Name] {
			bad(where+".name", "%q appears twice", f.Name)
		}
		seen[f.Name] = true
		if f.Pattern != "" {
			if _, err := regexp.Compile(f.Pattern); err != nil {
				bad(where+".pattern", "not a valid regular expression: %v", err)
			}
		}
		if f.MaxLength < 0 || f.MaxLength > 1024 {
			bad(where+".max_length", "must be between 0 (no limit but 256) and 1024")
		}
	}
	for i, d := range p.AllowedDomains {
		if _, err := mailbox.Parse("x@" + d); err != nil || strings.ToLower(d) != d {
			bad(fmt.Sprintf("allowed_domains[%d]", i), "%q is not a lower-case domain name in A-label form", d)
		}
	}
	switch p.Approval.Mode {
	case ApproveManual, ApproveAutomatic, ApprovePreApproved:
	case ApproveAutoDomains:
		if len(p.Approval.Domains) == 0 {
			bad("approval.domains", "automatic-domains needs at least one domain")
		}
	case "":
		bad("approval.mode", "is required: manual, automatic, automatic-domains or pre-approved")
	default:
		bad("approval.mode", "%q is not one of manual, automatic, automatic-domains, pre-approved", p.Approval.Mode)
	}
	if p.Approval.Mode == ApprovePreApproved && (p.Channels.Open || p.Channels.Referral) && !p.Channels.Invitation {
		bad("approval.mode", "pre-approved applies to invitations; allow the invitation channel")
	}
	if p.Approval.Required == 0 {
		p.Approval.Required = 1
	}
	if p.Approval.Required < 1 || p.Approval.Required > 10 {
		bad("approval.required", "must be between 1 and 10")
	}
	for i, n := range p.Notify {
		if _, err := mailbox.Parse(n); err != nil {
			bad(fmt.Sprintf("notify[%d]", i), "%q is not a mailbox", n)
		}
	}
	if len(p.KeyModes) == 0 {
		bad("key_modes", "at least one of server, csr")
	}
	for i, m := range p.KeyModes {
		if m != KeyServer && m != KeyCSR {
			bad(fmt.Sprintf("key_modes[%d]", i), "%q is not server or csr", m)
		}
	}
	if p.Profile == "" {
		p.Profile = ca.DefaultProfile
	}
	if _, err := ca.ProfileByName(p.Profile); err != nil {
		bad("profile", "%q is not one of %v", p.Profile, ca.ProfileNames())
	}
	if p.ValidityDays == 0 {
		p.ValidityDays = 365
	}
	if p.ValidityDays < 1 || p.ValidityDays > 825 {
		bad("validity_days", "must be between 1 and 825 (S/MIME BR 6.3.2)")
	}
	if p.P12Format == "" {
		p.P12Format = "legacy"
	}
	if _, err := p12.ParseFormat(p.P12Format); err != nil {
		bad("p12_format", "must be legacy or modern")
	}
	if strings.TrimSpace(p.Terms.Text) == "" || strings.TrimSpace(p.Terms.Version) == "" {
		bad("terms", "a version and the text the user accepts are required (S/MIME BR 9.6.3)")
	}
	if p.Templates != "" && !policyName.MatchString(p.Templates) {
		bad("templates", "must be a template set name: lower-case letters, digits and dashes")
	}
	ids := map[string]bool{}
	for i, k := range p.ReferralKeys {
		where := fmt.Sprintf("referral_keys[%d]", i)
		if k.ID == "" || ids[k.ID] {
			bad(where+".id", "must be present and unique")
		}
		ids[k.ID] = true
		if b, err := base64.RawURLEncoding.DecodeString(k.Secret); err != nil || len(b) < 32 {
			bad(where+".secret", "must be at least 32 random bytes, base64url without padding")
		}
	}
	if prof, err := ca.ProfileByName(p.Profile); err == nil && prof.Validation != ca.MailboxValidated {
		// The subject names the organisation: it may only vouch for
		// mailboxes of its own domains (S/MIME BR 3.2.3).
		if len(p.AllowedDomains) == 0 {
			bad("allowed_domains", "profile %s names the organisation, so it needs the organisation's domains here", p.Profile)
		}
		// A sponsor-validated subject names the person; a name the
		// applicant typed must be checked by an approver (BR 3.2.4).
		if prof.Validation == ca.SponsorValidated && p.Approval.Mode != ApproveManual {
			for i, f := range p.Fields {
				if (f.Name == FieldGivenName || f.Name == FieldSurname) && f.Editable {
					bad(fmt.Sprintf("fields[%d].editable", i), "profile %s puts the %s in the certificate: with %s approval it must come from the invitation, not be editable", p.Profile, f.Name, p.Approval.Mode)
				}
			}
		}
	}
	switch p.Renewal.Approval {
	case "":
		p.Renewal.Approval = RenewSame
	case RenewSame, RenewAutomatic:
	default:
		bad("renewal.approval", "%q is not same or automatic", p.Renewal.Approval)
	}
	if prof, err := ca.ProfileByName(p.Profile); err == nil && prof.Validation == ca.SponsorValidated && p.Renewal.Approval == RenewAutomatic {
		for i, f := range p.Fields {
			if (f.Name == FieldGivenName || f.Name == FieldSurname) && f.Editable {
				bad(fmt.Sprintf("fields[%d].editable", i), "profile %s puts the %s in the certificate: with automatic renewal it must not be editable", p.Profile, f.Name)
			}
		}
	}
	if p.Channels.Referral && len(p.ReferralKeys) == 0 {
		bad("referral_keys", "the referral channel needs at least one site key")
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

// AllowsDomain reports whether the policy accepts mailboxes in domain.
func (p *Policy) AllowsDomain(domain string) bool {
	return len(p.AllowedDomains) == 0 || slices.Contains(p.AllowedDomains, domain)
}

// AllowsKeyMode reports whether the policy offers m.
func (p *Policy) AllowsKeyMode(m KeyMode) bool { return slices.Contains(p.KeyModes, m) }

// Field returns the form field called name, if the policy shows it.
func (p *Policy) Field(name string) (Field, bool) {
	for _, f := range p.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// autoApproves reports whether an application for addr that came by ch
// is approved on submission. Pre-approval is the administrator's decision
// to invite: it covers invitations only, never referrals or open requests.
func (p *Policy) autoApproves(addr mailbox.Address, ch Channel) bool {
	switch p.Approval.Mode {
	case ApproveAutomatic:
		return true
	case ApprovePreApproved:
		// A renewal was offered by the system to a holder of a certificate
		// the administrator's invitation led to.
		return ch == ViaInvitation || ch == ViaRenewal
	case ApproveAutoDomains:
		return slices.Contains(p.Approval.Domains, addr.Domain)
	}
	return false
}

// MarshalJSON-compatible encoding of a policy for storage.
func (p *Policy) encode() (string, error) {
	b, err := json.Marshal(p)
	return string(b), err
}

func decodePolicy(body string, version int) (*Policy, error) {
	var p Policy
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		return nil, fmt.Errorf("enrol: stored policy does not decode: %w", err)
	}
	p.Version = version
	return &p, nil
}
