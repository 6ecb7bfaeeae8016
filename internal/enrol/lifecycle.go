package enrol

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/mailbox"
	"github.com/mailca/mailca/internal/schedule"
)

// Expiring is an issued, unrevoked certificate near the end of its validity.
type Expiring struct {
	Serial       string
	Mailbox      string
	Profile      string
	NotBefore    time.Time
	NotAfter     time.Time
	EnrolmentID  int64 // 0 when issued outside enrolment
	RemindedDays int   // the smallest threshold reminded so far; 0 for none
}

// LifecycleStore is what the lifecycle jobs read. The Store of mailca
// implements it; it is declared apart from Store so that fakes need not.
type LifecycleStore interface {
	// LapsedInvitations returns up to limit enrolments in state invited
	// whose invitation expired at or before now.
	LapsedInvitations(ctx context.Context, now time.Time, limit int) ([]*Enrolment, error)
	// LapsedCertificates returns up to limit enrolments in state issued
	// whose certificate's notAfter is at or before now.
	LapsedCertificates(ctx context.Context, now time.Time, limit int) ([]*Enrolment, error)
	// ExpiringCertificates returns the issued, unrevoked certificates whose
	// notAfter is in (now, until], soonest first, leaving out those whose
	// enrolment is no longer issued and those already renewed.
	ExpiringCertificates(ctx context.Context, now, until time.Time) ([]Expiring, error)
}

// LifecycleTx is what the lifecycle jobs need of a store transaction.
type LifecycleTx interface {
	// MarkReminder records the reminder of the certificate serial at days
	// before its expiry, and reports false when it was recorded before.
	MarkReminder(serial string, days int, at time.Time) (bool, error)
	// Renewal returns the live (invited, submitted, approved or issued)
	// renewal of the certificate serial; ErrNotFound when there is none.
	Renewal(serial string) (*Enrolment, error)
}

// DefaultReminderDays are the thresholds, in days before a certificate's
// notAfter, at which its subscriber is reminded.
var DefaultReminderDays = []int{30, 7, 1}

// LifecycleConfig configures the periodic jobs of the certificate
// lifecycle.
type LifecycleConfig struct {
	// ReminderDays are the reminder thresholds in days before notAfter;
	// nil means DefaultReminderDays.
	ReminderDays []int
	// DigestTo receives the daily list of certificates expiring within the
	// largest threshold; empty: no digest.
	DigestTo []string
	// Every is how often expiry and reminders run; default an hour.
	Every time.Duration
}

// LifecycleJobs returns the periodic jobs of the certificate lifecycle, for
// a schedule.Runner: "expire" (lapsed invitations and certificates past
// notAfter), "remind" (expiry reminders with renewal links),
// "stalled-batches" (Service.FailStalledBatches, every minute) and, when
// DigestTo is set, "digest" (once a day).
func (s *Service) LifecycleJobs(cfg LifecycleConfig) []schedule.Job {
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	days := cfg.ReminderDays
	if days == nil {
		days = DefaultReminderDays
	}
	jobs := []schedule.Job{
		{Name: "expire", Every: cfg.Every, Run: func(ctx context.Context) error {
			if _, err := s.ExpireInvitations(ctx); err != nil {
				return err
			}
			_, err := s.ExpireCertificates(ctx)
			return err
		}},
		{Name: "remind", Every: cfg.Every, Run: func(ctx context.Context) error {
			_, err := s.SendReminders(ctx, days)
			return err
		}},
		// Often, whatever cfg.Every: a batch whose import died shows as
		// failed, in the database and the API too, soon after BatchStall.
		{Name: "stalled-batches", Every: BatchStall / 2, Run: func(ctx context.Context) error {
			_, err := s.FailStalledBatches(ctx)
			return err
		}},
	}
	if len(cfg.DigestTo) > 0 {
		within := slices.Max(append([]int{1}, days...))
		jobs = append(jobs, schedule.Job{Name: "digest", Every: 24 * time.Hour, Run: func(ctx context.Context) error {
			_, err := s.SendDigest(ctx, within, cfg.DigestTo)
			return err
		}})
	}
	return jobs
}

// lifecycleChunk is how many enrolments one expiry transaction moves.
const lifecycleChunk = 500

func (s *Service) lifecycleStore() (LifecycleStore, error) {
	ls, ok := s.store.(LifecycleStore)
	if !ok {
		return nil, errors.New("enrol: this store has no certificate lifecycle")
	}
	return ls, nil
}

// ExpireInvitations moves every invitation whose link lapsed unused to
// expired, with its audit event, and returns how many it moved. An
// enrolment that changed meanwhile is left alone.
func (s *Service) ExpireInvitations(ctx context.Context) (int, error) {
	return s.expireAll(ctx, func(ls LifecycleStore, now time.Time) ([]*Enrolment, error) {
		return ls.LapsedInvitations(ctx, now, lifecycleChunk)
	}, s.expireInvitation)
}

// ExpireCertificates moves every issued enrolment whose certificate is
// past its notAfter to expired, with its audit event, and returns how many
// it moved.
func (s *Service) ExpireCertificates(ctx context.Context) (int, error) {
	return s.expireAll(ctx, func(ls LifecycleStore, now time.Time) ([]*Enrolment, error) {
		return ls.LapsedCertificates(ctx, now, lifecycleChunk)
	}, func(tx Tx, e *Enrolment, now time.Time) error {
		from, rev := e.State, e.Rev
		e.State, e.UpdatedAt = Expired, now
		if err := tx.Transition(e.ID, from, rev, e); err != nil {
			return err
		}
		return tx.Audit(Event{Actor: "system", Action: "enrolment.expire", Object: e.object(), Detail: "certificate " + e.Serial + " expired"})
	})
}

// expireAll moves the enrolments list finds, a chunk per transaction,
// until a chunk moves none.
func (s *Service) expireAll(ctx context.Context, list func(LifecycleStore, time.Time) ([]*Enrolment, error), expire func(Tx, *Enrolment, time.Time) error) (int, error) {
	ls, err := s.lifecycleStore()
	if err != nil {
		return 0, err
	}
	total := 0
	for {
		now := s.now()
		es, err := list(ls, now)
		if err != nil || len(es) == 0 {
			return total, err
		}
		moved := 0
		err = s.store.InTx(ctx, func(tx Tx) error {
			moved = 0
			for _, e := range es {
				err := expire(tx, e, now)
				if errors.Is(err, ErrStale) {
					continue // changed meanwhile: no longer ours to expire
				}
				if err != nil {
					return err
				}
				moved++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += moved
		if moved == 0 || len(es) < lifecycleChunk {
			return total, nil
		}
	}
}

// expireInvitation moves e, an invitation whose link lapsed, to expired
// and retires its links.
func (s *Service) expireInvitation(tx Tx, e *Enrolment, now time.Time) error {
	from, rev := e.State, e.Rev
	e.State, e.UpdatedAt = Expired, now
	if err := tx.Transition(e.ID, from, rev, e); err != nil {
		return err
	}
	if err := tx.RetireLinks(e.ID, PurposeInvitation, now); err != nil {
		return err
	}
	return tx.Audit(Event{Actor: "system", Action: "enrolment.expire", Object: e.object(), Detail: "invitation lapsed unused"})
}

// reminderThreshold returns the threshold due for a certificate with left
// time to go: the smallest of days that is at least left. A threshold not
// shorter than the certificate's whole validity is never due, so a short
// certificate is not reminded the moment it is issued. ok is false when
// none is due.
func reminderThreshold(days []int, left, validity time.Duration) (int, bool) {
	best, ok := 0, false
	for _, d := range days {
		span := time.Duration(d) * 24 * time.Hour
		if d <= 0 || left > span || span >= validity {
			continue
		}
		if !ok || d < best {
			best, ok = d, true
		}
	}
	return best, ok
}

// SendReminders reminds the subscriber of each certificate that has
// crossed one of the thresholds (days before notAfter) since the last
// reminder, and returns how many reminders it enqueued. Each certificate
// gets at most one reminder per threshold, however often this runs and on
// however many nodes: the record of the reminder is written in the
// transaction that enqueues it, under a unique constraint. A certificate
// first seen past several thresholds gets the reminder of the smallest.
//
// The reminder of a certificate issued by enrolment carries a renewal
// link: an invitation to a new enrolment for the same mailbox under the
// current version of the same policy, prefilled from the old one (see
// Policy.Renewal).
func (s *Service) SendReminders(ctx context.Context, days []int) (int, error) {
	ls, err := s.lifecycleStore()
	if err != nil {
		return 0, err
	}
	if len(days) == 0 {
		return 0, nil
	}
	now := s.now()
	xs, err := ls.ExpiringCertificates(ctx, now, now.Add(time.Duration(slices.Max(days))*24*time.Hour))
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, x := range xs {
		d, ok := reminderThreshold(days, x.NotAfter.Sub(now), x.NotAfter.Sub(x.NotBefore))
		if !ok || (x.RemindedDays != 0 && x.RemindedDays <= d) {
			continue
		}
		var did bool
		err := s.store.InTx(ctx, func(tx Tx) error {
			var err error
			did, err = s.remind(tx, x, d)
			return err
		})
		if err != nil {
			return sent, fmt.Errorf("enrol: reminder for certificate %s: %w", x.Serial, err)
		}
		if did {
			sent++
		}
	}
	return sent, nil
}

// remind records and enqueues the reminder of x at d days, with a
// renewal link when x came from an enrolment; false when it was sent before.
func (s *Service) remind(tx Tx, x Expiring, d int) (bool, error) {
	ltx, ok := tx.(LifecycleTx)
	if !ok {
		return false, errors.New("enrol: this store has no certificate lifecycle")
	}
	now := s.now()
	first, err := ltx.MarkReminder(x.Serial, d, now)
	if err != nil || !first {
		return false, err
	}
	data := map[string]string{
		"Mailbox": x.Mailbox, "GivenName": "", "Surname": "", "Serial": x.Serial,
		"NotAfter": x.NotAfter.UTC().Format("2 January 2006"), "Days": strconv.Itoa(d),
	}
	templates := ""
	if x.EnrolmentID != 0 {
		old, err := tx.Enrolment(x.EnrolmentID)
		if err != nil {
			return false, err
		}
		data["GivenName"], data["Surname"] = old.GivenName, old.Surname
		p, err := s.policyIn(tx, old.Policy)
		if err == nil {
			templates = p.Templates
			link, state, err := s.renewalLink(tx, ltx, p, old, x)
			if err != nil {
				return false, err
			}
			if link != "" {
				data["RenewalLink"], data["RenewalExpires"] = link, state
			} else if state != "" {
				data["RenewalState"] = state
			}
		}
	}
	if err := s.enqueue(tx, Mail{Template: "reminder", TemplateSet: templates, To: x.Mailbox, EnrolmentID: x.EnrolmentID, Data: data}); err != nil {
		return false, err
	}
	return true, tx.Audit(Event{Actor: "system", Action: "certificate.remind", Object: "certificate:" + x.Serial, Detail: strconv.Itoa(d) + " days before expiry"})
}

// renewalLink returns a new invitation link to the renewal of x, creating
// the renewal enrolment when none is live, and when the link expires. When
// a renewal is already past its form, it returns no link and the renewal's
// state; when the policy no longer admits the mailbox, neither.
func (s *Service) renewalLink(tx Tx, ltx LifecycleTx, p *Policy, old *Enrolment, x Expiring) (link, info string, err error) {
	now := s.now()
	r, err := ltx.Renewal(x.Serial)
	switch {
	case errors.Is(err, ErrNotFound):
		addr, perr := mailbox.Parse(old.Mailbox)
		if perr != nil || !p.AllowsDomain(addr.Domain) {
			return "", "", nil
		}
		r = &Enrolment{Policy: p.Name, PolicyVersion: p.Version, State: Invited, Channel: ViaRenewal,
			Mailbox: old.Mailbox, MailboxKey: old.MailboxKey, GivenName: old.GivenName, Surname: old.Surname,
			Fields: old.Fields, InvitedBy: "system", CreatedAt: now, UpdatedAt: now, RenewalOf: x.Serial,
			ExpiresAt: now.Add(time.Duration(p.InvitationLifetime))}
		if err := tx.InsertEnrolment(r); err != nil {
			return "", "", err
		}
		if err := tx.Audit(Event{Actor: "system", Action: "enrolment.renewal", Object: r.object(),
			Detail: "renews certificate " + x.Serial + " of enrolment " + strconv.FormatInt(old.ID, 10) + ", policy " + p.Name + " v" + strconv.Itoa(p.Version)}); err != nil {
			return "", "", err
		}
	case err != nil:
		return "", "", err
	case r.State != Invited:
		return "", string(r.State), nil
	default:
		// A new link replaces the one the previous reminder carried.
		if err := tx.RetireLinks(r.ID, PurposeInvitation, now); err != nil {
			return "", "", err
		}
		from, rev := r.State, r.Rev
		r.ExpiresAt, r.UpdatedAt = now.Add(time.Duration(p.InvitationLifetime)), now
		if err := tx.Transition(r.ID, from, rev, r); err != nil {
			return "", "", err
		}
	}
	token, hash := newToken()
	if err := tx.InsertLink(Link{Hash: hash, Purpose: PurposeInvitation, EnrolmentID: r.ID, ExpiresAt: r.ExpiresAt}); err != nil {
		return "", "", err
	}
	return s.public + "/e/" + token, r.ExpiresAt.UTC().Format("2 January 2006 15:04 MST"), nil
}

// SendDigest enqueues one email to each of to listing the certificates
// that expire within days, and returns how many it listed. It sends
// nothing when to is empty.
func (s *Service) SendDigest(ctx context.Context, days int, to []string) (int, error) {
	if len(to) == 0 {
		return 0, nil
	}
	ls, err := s.lifecycleStore()
	if err != nil {
		return 0, err
	}
	now := s.now()
	xs, err := ls.ExpiringCertificates(ctx, now, now.Add(time.Duration(days)*24*time.Hour))
	if err != nil {
		return 0, err
	}
	var list strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&list, "%s  %s  serial %s\n", x.NotAfter.UTC().Format("2006-01-02"), x.Mailbox, x.Serial)
	}
	data := map[string]string{"Count": strconv.Itoa(len(xs)), "Days": strconv.Itoa(days), "Date": now.UTC().Format("2 January 2006"),
		"Certificates": list.String()}
	err = s.store.InTx(ctx, func(tx Tx) error {
		for _, addr := range to {
			if err := s.enqueue(tx, Mail{Template: "digest", To: addr, Data: data}); err != nil {
				return err
			}
		}
		return tx.Audit(Event{Actor: "system", Action: "certificate.digest", Object: "digest", Detail: fmt.Sprintf("%d certificates expiring within %d days, to %d recipients", len(xs), days, len(to))})
	})
	return len(xs), err
}
