package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/store/sqlite"
)

// TestConsolePlans checks that every list query of the console walks an
// index (or the rowid) in the order of its page: no step scans a table
// and none sorts, so a page costs the same with a million enrolments. The
// audit log's queries that sort are those auditFrom lets sort: fewer than
// AuditSortMax events, found by an index.
func TestConsolePlans(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// An audit log for the probes of the audit queries: more enrolment
	// events than they let a query sort, 100 a day, and one account event,
	// on the last day.
	day0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	days := sqlite.AuditSeqSortMax/100 + 10
	err = db.InTx(ctx, func(tx enrol.Tx) error {
		for d := range days {
			db.SetClock(func() time.Time { return day0.AddDate(0, 0, d) })
			var es []enrol.Event
			for i := range 100 {
				es = append(es, enrol.Event{Actor: "cli", Action: "enrolment.invite", Object: fmt.Sprintf("enrolment:%d", d*100+i+1)})
			}
			if d == days-1 {
				es = append(es, enrol.Event{Actor: "console:root@example.com", Action: "account.join", Object: "account:root@example.com"})
			}
			if err := tx.AuditAll(es); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	oneDay := store.AuditQuery{Since: day0.AddDate(0, 0, 3).Truncate(24 * time.Hour), Until: day0.AddDate(0, 0, 4).Truncate(24 * time.Hour)}
	oneDayAction := oneDay
	oneDayAction.Action = "enrolment.invite"
	two := []string{"staff", "students"}
	tests := []struct {
		name  string
		q     any
		index string // the index the first step must use ("" for the rowid)
		sorts bool   // the plan may sort (what the index finds, fewer than AuditSortMax rows)
	}{
		{"newest", store.EnrolmentQuery{}, "", false},
		{"newest, page 2", store.EnrolmentQuery{After: 500}, "", false},
		{"state", store.EnrolmentQuery{State: enrol.Invited, After: 500}, "enrolments_state", false},
		{"policy", store.EnrolmentQuery{Policies: two[:1], After: 500}, "enrolments_policy", false},
		{"policy and state", store.EnrolmentQuery{Policies: two[:1], State: enrol.Issued, After: 500}, "enrolments_policy_state", false},
		{"two policies", store.EnrolmentQuery{Policies: two, After: 500}, "enrolments_policy", false},
		{"two policies and state", store.EnrolmentQuery{Policies: two, State: enrol.Invited}, "enrolments_policy_state", false},
		{"batch", store.EnrolmentQuery{BatchID: 3, After: 500}, "enrolments_batch", false},
		{"batch and policy", store.EnrolmentQuery{BatchID: 3, Policies: two[:1], After: 500}, "enrolments_batch", false},
		{"batch and two policies", store.EnrolmentQuery{BatchID: 3, Policies: two}, "enrolments_batch", false},
		{"mailbox", store.EnrolmentQuery{Mailbox: "ann", After: 500}, "enrolments_mailbox_key", false},
		{"mailbox, policy and state", store.EnrolmentQuery{Mailbox: "ann", Policies: two, State: enrol.Invited, After: 500}, "enrolments_mailbox_key", false},
		{"surname", store.EnrolmentQuery{Surname: "smi", After: 500}, "enrolments_surname", false},
		{"given name and surname", store.EnrolmentQuery{Surname: "smi", GivenName: "ann", Policies: two[:1]}, "enrolments_surname", false},
		{"queue", store.QueueQuery{After: 500}, "enrolments_queue", false},
		{"queue of a policy", store.QueueQuery{Policies: two[:1], After: 500}, "enrolments_policy_queue", false},
		{"queue of two policies", store.QueueQuery{Policies: two, After: 500}, "enrolments_queue", false},
		{"certificates", store.CertificateQuery{After: "1f"}, "", false},
		{"certificates of two policies", store.CertificateQuery{Policies: two, After: "1f"}, "", false},
		{"certificates by mailbox", store.CertificateQuery{Mailbox: "ann@", After: "1f"}, "certificates_mailbox", false},
		{"certificates by serial", store.CertificateQuery{Serial: "1f2e", After: "1f2e3"}, "sqlite_autoindex_certificates_1", false},
		{"certificates by surname", store.CertificateQuery{Surname: "smi", After: "1f"}, "enrolments_surname", false},
		{"audit", store.AuditQuery{}, "", false},
		{"audit, page 2", store.AuditQuery{Before: 500}, "", false},
		{"audit by action", store.AuditQuery{Action: "account.join"}, "audit_events_action", false},
		{"audit by actor", store.AuditQuery{Actor: "console:root@example.com", Before: 500}, "audit_events_actor", false},
		{"audit by action and actor", store.AuditQuery{Action: "account.join", Actor: "cli"}, "audit_events_action", false},
		{"audit by a type of many objects", store.AuditQuery{Object: "enrolment:"}, "", false},
		{"audit by a type of few objects", store.AuditQuery{Object: "account:"}, "audit_events_object", true},
		{"audit by one object", store.AuditQuery{Object: "enrolment:42", Before: 500}, "audit_events_object", true},
		{"audit by one object and action", store.AuditQuery{Object: "enrolment:42", Action: "enrolment.invite"}, "audit_events_object", true},
		{"audit by a type and action", store.AuditQuery{Object: "enrolment:", Action: "enrolment.invite"}, "audit_events_action", false},
		{"audit of one day", oneDay, "audit_events_at", true},
		{"audit of one day by action", oneDayAction, "audit_events_at", true},
		{"audit of a long time", store.AuditQuery{Since: day0}, "", false},
		{"audit of a long time by actor", store.AuditQuery{Until: day0.AddDate(1, 0, 0), Actor: "cli"}, "audit_events_actor", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plans, err := sqlite.ConsolePlans(ctx, db, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			for _, plan := range plans {
				t.Logf("%s", strings.Join(plan, " / "))
				text := strings.Join(plan, "\n")
				for _, step := range plan {
					if strings.Contains(step, "TEMP B-TREE") && !tt.sorts {
						t.Errorf("plan sorts:\n%s", text)
					}
					if strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "USING") {
						t.Errorf("plan scans a table:\n%s", text)
					}
				}
				first := plan[0]
				if len(plan) > 2 && strings.HasPrefix(plan[1], "LIST SUBQUERY") {
					first = plan[2] // the subquery chooses the rows, by seq
				}
				if tt.index == "" {
					if !strings.Contains(first, "SCAN") && !strings.Contains(first, "INTEGER PRIMARY KEY") {
						t.Errorf("first step %q, want a walk of the rowid:\n%s", first, text)
					}
				} else if !strings.Contains(first, "INDEX "+tt.index+" ") && !strings.HasSuffix(first, "INDEX "+tt.index) {
					t.Errorf("first step %q, want index %s:\n%s", first, tt.index, text)
				}
			}
		})
	}
}

// TestListEnrolmentsPages walks the pages of an officer's two policies,
// which are one query per policy merged: together the pages are every
// enrolment of the two, newest first, each once.
func TestListEnrolmentsPages(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	policies := []string{"a", "b", "c"}
	for _, p := range policies {
		if _, err := db.SavePolicy(ctx, p, "{}", "test"); err != nil {
			t.Fatal(err)
		}
	}
	var want []int64
	err = db.InTx(ctx, func(tx enrol.Tx) error {
		for i := range 40 {
			p := policies[i%3]
			m := fmt.Sprintf("p%02d@example.org", i)
			e := &enrol.Enrolment{Policy: p, PolicyVersion: 1, State: enrol.Invited, Channel: enrol.ViaInvitation, Mailbox: m, MailboxKey: m, CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(1, 0)}
			if err := tx.InsertEnrolment(e); err != nil {
				return err
			}
			if p != "c" {
				want = append([]int64{e.ID}, want...)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	q := store.EnrolmentQuery{Policies: []string{"b", "a"}, Limit: 7}
	for page := 0; ; page++ {
		es, err := db.ListEnrolments(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > 7 {
			t.Fatalf("page %d has %d rows, limit 7", page, len(es))
		}
		for _, e := range es {
			got = append(got, e.ID)
		}
		if len(es) < 7 {
			break
		}
		q.After = es[len(es)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages = %v, want %v", got, want)
	}
}

// TestBatchRows stores a report in chunks and reads it back by pages and
// whole, in line order.
func TestBatchRows(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "mailca.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := &enrol.Batch{Policy: "a", Filename: "f.csv", Actor: "console:ann@example.org", State: "importing", CreatedAt: time.Unix(1, 0)}
	if err := db.InTx(ctx, func(tx enrol.Tx) error { return tx.InsertBatch(b) }); err != nil {
		t.Fatal(err)
	}
	var rows []store.BatchRow
	for i := 2; i < 1203; i++ {
		rows = append(rows, store.BatchRow{Line: i, Email: fmt.Sprintf("u%d@example.org", i), Invited: i%5 != 0, Reason: map[bool]string{true: "invalid mailbox"}[i%5 == 0]})
	}
	for _, part := range [][]store.BatchRow{rows[:700], rows[700:]} {
		res := make([]enrol.RowResult, len(part))
		for i, r := range part {
			res[i] = enrol.RowResult{Line: r.Line, Email: r.Email, Invited: r.Invited, Reason: r.Reason}
		}
		if err := db.InTx(ctx, func(tx enrol.Tx) error { return tx.InsertBatchRows(b.ID, res) }); err != nil {
			t.Fatal(err)
		}
	}
	page, err := db.BatchRows(ctx, b.ID, 100, true, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].Line != 105 || page[2].Line != 115 || page[0].Invited || page[0].Reason != "invalid mailbox" {
		t.Errorf("refused rows after line 100 = %+v", page)
	}
	n := 0
	err = db.ScanBatchRows(ctx, b.ID, func(r store.BatchRow) error {
		if r.Line != rows[n].Line {
			t.Fatalf("row %d has line %d, want %d", n, r.Line, rows[n].Line)
		}
		n++
		return nil
	})
	if err != nil || n != len(rows) {
		t.Errorf("ScanBatchRows: %d rows, %v; want %d", n, err, len(rows))
	}
}
