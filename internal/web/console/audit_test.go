package console_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/store"
)

var (
	rowRe  = regexp.MustCompile(`<tr><td class="num">(\d+)</td>`)
	nextRe = regexp.MustCompile(`<a href="(/console/audit\?[^"]+)" rel="next">`)
)

func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.account("aud@example.org", auth.Administrator)
	e.account("auditor@example.org", auth.Auditor)
	start := e.clock.Now()
	for i := range 120 {
		actor := "cli"
		if i%2 == 0 {
			actor = "system"
		}
		if err := e.db.ConsoleAudit(ctx, actor, "test.event", "thing:"+string(rune('a'+i%3)), "n"); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
	}
	session := e.login("auditor@example.org")

	// Keyset pages: 60 events by cli, 50 on the first page, 10 on the next.
	res, body := e.get("/console/audit?actor=cli&action=test.event", session)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("audit = %d\n%s", res.StatusCode, excerpt(body))
	}
	first := rowRe.FindAllStringSubmatch(body, -1)
	if len(first) != 50 || strings.Contains(body, "<td>system</td>") {
		t.Fatalf("first page has %d rows (want 50), or events of another actor", len(first))
	}
	next := nextRe.FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("first page has no link to the next")
	}
	path := strings.ReplaceAll(next[1], "&amp;", "&")
	if !strings.Contains(path, "actor=cli") || !strings.Contains(path, "before="+first[49][1]) {
		t.Errorf("next link %q does not keep the filter or continue after event %s", path, first[49][1])
	}
	_, body = e.get(path, session)
	if rows := rowRe.FindAllStringSubmatch(body, -1); len(rows) != 10 || nextRe.MatchString(body) {
		t.Errorf("second page has %d rows and next link %v, want 10 and none", len(rows), nextRe.MatchString(body))
	}

	// Object prefix and time range.
	tests := []struct {
		query string
		want  int
	}{
		{"object=thing:a", 40},
		{"object=thing:", 50},
		{"action=test.event&from=" + start.Add(100*time.Minute).Format("2006-01-02T15:04"), 20},
		{"action=test.event&from=" + start.Add(10*time.Minute).Format("2006-01-02T15:04") + "&to=" + start.Add(20*time.Minute).Format("2006-01-02T15:04"), 10},
		{"action=test.event&to=" + start.Format("2006-01-02"), 50}, // the whole day: a full page
		{"actor=nobody", 0},
	}
	for _, tt := range tests {
		_, body := e.get("/console/audit?"+tt.query, session)
		if got := len(rowRe.FindAllStringSubmatch(body, -1)); got != tt.want {
			t.Errorf("audit?%s shows %d events, want %d", tt.query, got, tt.want)
		}
	}
	res, body = e.get("/console/audit?from=yesterday", session)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not a date such as") {
		t.Errorf("audit?from=yesterday = %d, want 400 saying how to write a date", res.StatusCode)
	}
}

func TestAuditCSV(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.account("ann@example.org", auth.Administrator)
	for _, ev := range [][3]string{
		{"=cmd|'/c calc'!A1", "@SUM(1+1)", "+danger"},
		{"-2+3", "plain", "\ttab"},
	} {
		if err := e.db.ConsoleAudit(ctx, "cli", ev[0], ev[1], ev[2]); err != nil {
			t.Fatal(err)
		}
	}
	session := e.login("ann@example.org")
	// An export is recorded, so only a form of ours (a POST) starts one.
	if res, _ := e.get("/console/audit.csv?actor=cli", session); res.StatusCode == http.StatusOK {
		t.Errorf("GET /console/audit.csv = %d, want no export", res.StatusCode)
	}
	if evs, err := e.db.AuditFilter(ctx, store.AuditQuery{Action: "audit.export"}); err != nil || len(evs) != 0 {
		t.Errorf("a GET recorded exports %+v, %v", evs, err)
	}
	res, body := e.post("/console/audit.csv", session, url.Values{"actor": {"cli"}})
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("audit.csv = %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}
	if !strings.HasPrefix(body, "\uFEFF") {
		t.Errorf("CSV lacks the byte order mark")
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var cells []string
	for _, r := range rows[1:] {
		if r[2] != "cli" {
			continue // the join and login events of the account
		}
		cells = append(cells, r[3:6]...)
	}
	want := []string{"'=cmd|'/c calc'!A1", "'@SUM(1+1)", "'+danger", "'-2+3", "plain", "'\ttab"}
	if strings.Join(cells, "|") != strings.Join(want, "|") {
		t.Errorf("CSV cells = %q, want %q", cells, want)
	}
	// The export is itself recorded, with its filter.
	evs, err := e.db.AuditFilter(ctx, store.AuditQuery{Action: "audit.export"})
	if err != nil || len(evs) != 1 || evs[0].Actor != "console:ann@example.org" || !strings.Contains(evs[0].Detail, `actor "cli"`) {
		t.Errorf("audit.export events = %+v, %v; want one by console:ann@example.org naming the filter", evs, err)
	}
}
