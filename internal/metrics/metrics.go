// Package metrics counts mailca's work for Prometheus, as the observer of the engine, the enrolment service, the outbox and the web server.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/web"
)

// Queue reports how many outbox messages are in each state; *sqlite.DB
// is one.
type Queue interface {
	Counts(ctx context.Context) (map[string]int, error)
}

// Config configures Metrics.
type Config struct {
	// Registry receives every metric; nil means a new one. Never the
	// global default registry: two Metrics in one process (tests) must
	// not collide.
	Registry *prometheus.Registry
	// QueueTimeout bounds the read of the queue at a scrape (see
	// WatchQueue); default 2s.
	QueueTimeout time.Duration
	// Runtime adds the Go runtime and process collectors (go_*, process_*).
	Runtime bool
}

// Metrics holds mailca's metrics. It is the ca.Observer, enrol.Observer,
// outbox.Observer and web.RequestObserver of a server. No label carries a
// mailbox, a serial or a path: their values are profile names, fixed words
// and route patterns.
type Metrics struct {
	reg          *prometheus.Registry
	queueTimeout time.Duration

	issued      *prometheus.CounterVec
	lintRefused prometheus.Counter
	invited     prometheus.Counter
	submitted   prometheus.Counter
	approved    prometheus.Counter
	rejected    prometheus.Counter
	sent        prometheus.Counter
	failures    *prometheus.CounterVec
	requests    *prometheus.HistogramVec
}

var (
	_ ca.Observer         = (*Metrics)(nil)
	_ enrol.Observer      = (*Metrics)(nil)
	_ outbox.Observer     = (*Metrics)(nil)
	_ web.RequestObserver = (*Metrics)(nil)
)

// New creates the metrics and registers them in cfg.Registry. It fails
// only when a metric of the same name is registered there already.
func New(cfg Config) (*Metrics, error) {
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Metrics{
		reg: reg, queueTimeout: cfg.QueueTimeout,
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailca_certificates_issued_total", Help: "Certificates signed and stored, by profile.",
		}, []string{"profile"}),
		lintRefused: counter("mailca_lint_refusals_total", "Certificates the linter refused before signing."),
		invited:     counter("mailca_enrolments_invited_total", "Invitations stored, one by one or from CSV files."),
		submitted:   counter("mailca_enrolments_submitted_total", "Applications submitted."),
		approved:    counter("mailca_enrolments_approved_total", "Applications approved, by approvers or automatically."),
		rejected:    counter("mailca_enrolments_rejected_total", "Applications rejected."),
		sent:        counter("mailca_mail_sent_total", "Emails the SMTP server accepted."),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailca_mail_failures_total", Help: "Failed email attempts: temporary (to be retried) or permanent.",
		}, []string{"kind"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mailca_http_request_duration_seconds", Help: "Time to answer HTTP requests, by route pattern, method and status class.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
	}
	// Zero series up front, so that rates and alerts see 0 rather than
	// nothing before the first failure.
	m.failures.WithLabelValues("temporary")
	m.failures.WithLabelValues("permanent")
	cs := []prometheus.Collector{m.issued, m.lintRefused, m.invited, m.submitted, m.approved, m.rejected, m.sent, m.failures, m.requests}
	if cfg.Runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WatchQueue adds mailca_mail_queue_depth, read from q at every scrape.
// Call it once, when the database is open.
func (m *Metrics) WatchQueue(q Queue) error {
	t := m.queueTimeout
	if t <= 0 {
		t = 2 * time.Second
	}
	return m.reg.Register(&queueCollector{q: q, timeout: t, desc: prometheus.NewDesc("mailca_mail_queue_depth",
		"Emails in the outbox by state: pending (waiting or to be retried) or failed for good.", []string{"state"}, nil)})
}

// Handler serves the registry in the Prometheus exposition format. A
// metric that cannot be collected (the queue depth while the database is
// down) is left out and the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Issued implements ca.Observer.
func (m *Metrics) Issued(profile string) { m.issued.WithLabelValues(profile).Inc() }

// LintRefused implements ca.Observer.
func (m *Metrics) LintRefused() { m.lintRefused.Inc() }

// Invited implements enrol.Observer.
func (m *Metrics) Invited() { m.invited.Inc() }

// Submitted implements enrol.Observer.
func (m *Metrics) Submitted() { m.submitted.Inc() }

// Approved implements enrol.Observer.
func (m *Metrics) Approved() { m.approved.Inc() }

// Rejected implements enrol.Observer.
func (m *Metrics) Rejected() { m.rejected.Inc() }

// Sent implements outbox.Observer.
func (m *Metrics) Sent() { m.sent.Inc() }

// Failed implements outbox.Observer.
func (m *Metrics) Failed(permanent bool) {
	kind := "temporary"
	if permanent {
		kind = "permanent"
	}
	m.failures.WithLabelValues(kind).Inc()
}

// ObserveRequest implements web.RequestObserver.
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, statusClass(status)).Observe(d.Seconds())
}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// queueCollector reads the outbox counts at scrape time, so the gauge is
// right on every node sharing the database and nothing has to keep it.
type queueCollector struct {
	q       Queue
	timeout time.Duration
	desc    *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.q.Counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	// Sent messages are not a queue.
	for _, s := range []string{"pending", "failed"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
