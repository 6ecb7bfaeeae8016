// Package webhook tells other systems of enrolment events with signed HTTP POSTs, following the audit chain.
//
// # Design
//
// Every transition of an enrolment already appends an audit event in its
// own transaction (see internal/audit). The dispatcher follows that chain
// rather than hooking the transitions: each endpoint has a cursor, the
// last audit sequence number it has considered, and a scan queues one
// delivery per matching event and moves the cursor in a single
// transaction. So no transition code changes, no transaction waits for a
// webhook, and an event cannot be missed or queued twice: the deliveries
// table has one row per (endpoint, event), and the cursor moves only with
// a conditional update.
//
// Deliveries are claimed with a lease, like the email outbox, so several
// mailca processes on one database never send the same delivery at the
// same time; a process that dies holding a lease has its deliveries sent
// again once the lease runs out. Delivery is therefore at least once:
// receivers must deduplicate on the Mailca-Event-Id header, which is the
// audit sequence number and stays the same across retries. Failures are
// retried with exponential backoff up to MaxAttempts.
//
// Each POST carries Mailca-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
// "<t>.<body>" under the endpoint's secret>. The secret is stored as
// given, since signing needs it; it is printed once when the endpoint is
// added.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// Endpoint is a URL told of the events of one policy.
type Endpoint struct {
	ID        int64
	Policy    string
	URL       string
	Secret    string // the HMAC key, as printed when the endpoint was added
	Cursor    int64  // last audit sequence number considered
	CreatedBy string
	CreatedAt time.Time
}

// Event is an audit event the webhooks report, with the enrolment it is
// about as it stands when read.
type Event struct {
	Seq       int64
	At        time.Time
	Action    string // one of Actions' keys
	Actor     string
	Enrolment *enrol.Enrolment
}

// Actions maps the audit actions that webhooks report to the event types
// they send.
var Actions = map[string]string{
	"enrolment.submit":   "enrolment.submitted",
	"enrolment.approve":  "enrolment.approved",
	"certificate.issue":  "enrolment.issued",
	"certificate.revoke": "enrolment.revoked",
}

// Delivery is one event to send to one endpoint.
type Delivery struct {
	ID         int64
	EndpointID int64
	Seq        int64
	Type       string
	Body       []byte
	Attempts   int // before this one
	URL        string
	Secret     string
}

// ErrStale is returned by QueueDeliveries when the endpoint's cursor moved
// meanwhile (another process scanned first).
var ErrStale = errors.New("webhook: cursor moved meanwhile")

// ErrNotFound is returned for an endpoint that does not exist.
var ErrNotFound = errors.New("webhook: no such endpoint")

// Store keeps endpoints and deliveries.
type Store interface {
	// InsertWebhook stores e with its cursor at the end of the audit chain
	// and sets e.ID and e.Cursor, appending ev (its Object set to
	// "webhook:<id>") in the same transaction.
	InsertWebhook(ctx context.Context, e *Endpoint, ev enrol.Event) error
	// Webhooks lists the endpoints not removed.
	Webhooks(ctx context.Context) ([]Endpoint, error)
	// RemoveWebhook removes endpoint id; its pending deliveries are not
	// sent. ErrNotFound when there is no such endpoint.
	RemoveWebhook(ctx context.Context, id int64, at time.Time, ev enrol.Event) error
	// WebhookEvents returns up to limit audit events with the actions of
	// Actions and a sequence number above after, oldest first, and the
	// sequence number up to which the chain was read: the last event's
	// when limit events were returned, else the end of the chain.
	WebhookEvents(ctx context.Context, after int64, limit int) ([]Event, int64, error)
	// QueueDeliveries moves endpoint id's cursor from from to to and stores
	// ds, in one transaction; ErrStale when the cursor is no longer from.
	QueueDeliveries(ctx context.Context, id, from, to int64, ds []Delivery, now time.Time) error
	// ClaimWebhookDeliveries leases up to n pending deliveries that are due to
	// this caller until now+lease.
	ClaimWebhookDeliveries(ctx context.Context, now time.Time, n int, lease time.Duration) ([]Delivery, error)
	MarkWebhookDelivered(ctx context.Context, id int64, now time.Time) error
	MarkWebhookRetry(ctx context.Context, id int64, next time.Time, reason string) error
	MarkWebhookFailed(ctx context.Context, id int64, reason string) error
}

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "mwh_"

// Add validates and stores an endpoint for policy and returns it with its
// secret, which the caller shows once. Only events from now on are sent.
func Add(ctx context.Context, st Store, actor, policy, rawURL string, now time.Time) (*Endpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, errs.E(errs.Invalid, "a webhook URL is an absolute http or https URL without credentials or fragment")
	}
	if policy == "" {
		return nil, errs.E(errs.Invalid, "a webhook needs a policy")
	}
	b := make([]byte, 32)
	rand.Read(b)
	e := &Endpoint{Policy: policy, URL: u.String(), Secret: SecretPrefix + base64.RawURLEncoding.EncodeToString(b), CreatedBy: actor, CreatedAt: now.UTC()}
	err = st.InsertWebhook(ctx, e, enrol.Event{Actor: actor, Action: "webhook.add", Detail: "policy " + policy + ", " + redact(u)})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// redact returns u without its query, which may carry a token of the
// receiver's.
func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}

// Remove removes endpoint id.
func Remove(ctx context.Context, st Store, actor string, id int64, now time.Time) error {
	err := st.RemoveWebhook(ctx, id, now, enrol.Event{Actor: actor, Action: "webhook.remove", Object: "webhook:" + strconv.FormatInt(id, 10)})
	if errors.Is(err, ErrNotFound) {
		return errs.Wrap(errs.NotFound, err, fmt.Sprintf("no webhook %d", id))
	}
	return err
}

// Sign returns the Mailca-Signature header value for body at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a Mailca-Signature header against body, accepting a
// timestamp within tolerance of now. Receivers written in Go can use it.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(n, 0)); d > tolerance || d < -tolerance {
		return false
	}
	want := Sign(secret, time.Unix(n, 0), body)
	return hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig))
}

// Config configures a Dispatcher.
type Config struct {
	Store  Store
	Client *http.Client     // nil: 10 s timeout, no redirects followed
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil: time.Now
	Poll   time.Duration    // how often to look for events and due deliveries; default 1 s
	Lease  time.Duration    // how long a claimed delivery is ours; default 30 s
	// MaxAttempts is how many times a delivery is tried; default 12
	// (about a day and a half with the default backoff).
	MaxAttempts int
	// Backoff is the wait after the nth failed attempt (n from 1);
	// default 2 s × 3^(n-1), at most 6 hours.
	Backoff func(n int) time.Duration
}

// Dispatcher queues and sends deliveries.
type Dispatcher struct {
	cfg Config
	log *slog.Logger
}

// NewDispatcher returns a Dispatcher for cfg.
func NewDispatcher(cfg Config) *Dispatcher {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(n int) time.Duration {
			d := 2 * time.Second
			for i := 1; i < n && d < 6*time.Hour; i++ {
				d *= 3
			}
			return min(d, 6*time.Hour)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{cfg: cfg, log: log}
}

// Run scans and delivers every Poll until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := d.Scan(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("webhook: scanning the audit log", "err", err)
		}
		if _, err := d.Deliver(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("webhook: delivering", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// scanBatch is how many audit events one scan step reads.
const scanBatch = 500

// Scan queues a delivery for each new event of each endpoint's policy and
// returns how many it queued.
func (d *Dispatcher) Scan(ctx context.Context) (int, error) {
	eps, err := d.cfg.Store.Webhooks(ctx)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, ep := range eps {
		for {
			evs, upTo, err := d.cfg.Store.WebhookEvents(ctx, ep.Cursor, scanBatch)
			if err != nil {
				return queued, err
			}
			if upTo <= ep.Cursor {
				break
			}
			var ds []Delivery
			for _, ev := range evs {
				if ev.Enrolment == nil || ev.Enrolment.Policy != ep.Policy {
					continue
				}
				body, err := Body(ev)
				if err != nil {
					return queued, err
				}
				ds = append(ds, Delivery{EndpointID: ep.ID, Seq: ev.Seq, Type: Actions[ev.Action], Body: body})
			}
			err = d.cfg.Store.QueueDeliveries(ctx, ep.ID, ep.Cursor, upTo, ds, d.cfg.Now())
			if errors.Is(err, ErrStale) {
				break // another process is at it; the next scan rereads
			}
			if err != nil {
				return queued, err
			}
			queued += len(ds)
			ep.Cursor = upTo
			if len(evs) < scanBatch {
				break
			}
		}
	}
	return queued, nil
}

// payload is the body of a delivery.
type payload struct {
	ID        string        `json:"id"`
	Type      string        `json:"type"`
	CreatedAt time.Time     `json:"created_at"`
	Actor     string        `json:"actor"`
	Enrolment enrolmentJSON `json:"enrolment"`
}

type enrolmentJSON struct {
	ID        int64  `json:"id"`
	Policy    string `json:"policy"`
	State     string `json:"state"` // as it stands when the event is dispatched
	Channel   string `json:"channel"`
	Mailbox   string `json:"mailbox"`
	GivenName string `json:"given_name"`
	Surname   string `json:"surname"`
	Serial    string `json:"serial,omitempty"`
}

// Body returns the JSON body sent for ev.
func Body(ev Event) ([]byte, error) {
	e := ev.Enrolment
	return json.Marshal(payload{ID: strconv.FormatInt(ev.Seq, 10), Type: Actions[ev.Action], CreatedAt: ev.At.UTC(), Actor: ev.Actor,
		Enrolment: enrolmentJSON{ID: e.ID, Policy: e.Policy, State: string(e.State), Channel: string(e.Channel), Mailbox: e.Mailbox,
			GivenName: e.GivenName, Surname: e.Surname, Serial: e.Serial}})
}

// claimBatch is how many deliveries one Deliver claims at most.
const claimBatch = 50

// Deliver sends the due deliveries and returns how many succeeded.
func (d *Dispatcher) Deliver(ctx context.Context) (int, error) {
	ds, err := d.cfg.Store.ClaimWebhookDeliveries(ctx, d.cfg.Now(), claimBatch, d.cfg.Lease)
	if err != nil {
		return 0, err
	}
	ok := 0
	for _, dl := range ds {
		if ctx.Err() != nil {
			return ok, nil // the lease runs out; another pass sends them
		}
		err := d.send(ctx, dl)
		now := d.cfg.Now()
		switch {
		case err == nil:
			ok++
			err = d.cfg.Store.MarkWebhookDelivered(ctx, dl.ID, now)
		case dl.Attempts+1 >= d.cfg.MaxAttempts:
			d.log.Warn("webhook: giving up", "endpoint", dl.EndpointID, "event", dl.Seq, "err", err)
			err = d.cfg.Store.MarkWebhookFailed(context.WithoutCancel(ctx), dl.ID, err.Error())
		default:
			d.log.Info("webhook: will retry", "endpoint", dl.EndpointID, "event", dl.Seq, "attempt", dl.Attempts+1, "err", err)
			err = d.cfg.Store.MarkWebhookRetry(context.WithoutCancel(ctx), dl.ID, now.Add(d.cfg.Backoff(dl.Attempts+1)), err.Error())
		}
		if err != nil {
			return ok, err
		}
	}
	return ok, nil
}

func (d *Dispatcher) send(ctx context.Context, dl Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mailca-webhook/1")
	req.Header.Set("Mailca-Event-Id", strconv.FormatInt(dl.Seq, 10))
	req.Header.Set("Mailca-Event-Type", dl.Type)
	req.Header.Set("Mailca-Signature", Sign(dl.Secret, d.cfg.Now(), dl.Body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return errors.New("webhook: " + ue.Op + ": " + ue.Err.Error()) // without the URL, which may carry a token
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook: receiver answered %s", resp.Status)
	}
	return nil
}
