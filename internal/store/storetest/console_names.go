package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

// testConsoleNames searches surnames and given names that begin with a
// non-ASCII capital, which SQL's lower() does not fold, in any case, also
// after a transition changed the name; and checks the dashboard's counts
// as enrolments come and change state.
func testConsoleNames(t *testing.T, s store.Store) {
	ctx := context.Background()
	savePolicy(t, s, "n")
	before, err := s.CountEnrolments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ode := newEnrolment("n", "ode@example.org")
	ode.GivenName, ode.Surname = "Åsa", "Ödegaard"
	oslo := newEnrolment("n", "oslo@example.org")
	oslo.GivenName, oslo.Surname = "Ole", "Olsen"
	eve := newEnrolment("n", "eve@example.org")
	eve.GivenName, eve.Surname = "Émile", "Zola"
	insert(t, s, ode, oslo, eve)
	tests := []struct {
		name string
		q    store.EnrolmentQuery
		want []int64
	}{
		{"as written", store.EnrolmentQuery{Surname: "Ödegaard"}, []int64{ode.ID}},
		{"lower case", store.EnrolmentQuery{Surname: "ödegaard"}, []int64{ode.ID}},
		{"upper-case prefix", store.EnrolmentQuery{Surname: "ÖDE"}, []int64{ode.ID}},
		{"no accent is another letter", store.EnrolmentQuery{Surname: "odegaard"}, nil},
		{"given name in another case", store.EnrolmentQuery{Surname: "ödegaard", GivenName: "ÅSA"}, []int64{ode.ID}},
		{"given name that does not match", store.EnrolmentQuery{Surname: "ödegaard", GivenName: "ole"}, nil},
		{"non-ASCII given name", store.EnrolmentQuery{Surname: "zola", GivenName: "émile"}, []int64{eve.ID}},
		{"surname order", store.EnrolmentQuery{Surname: "o", Policies: []string{"n"}}, []int64{oslo.ID}},
	}
	for _, tt := range tests {
		got, err := s.ListEnrolments(ctx, tt.q)
		if err != nil || !slices.Equal(ids(got), tt.want) {
			t.Errorf("%s: ListEnrolments(%+v) = %v, %v; want %v", tt.name, tt.q, ids(got), err, tt.want)
		}
	}

	// A transition that changes the name changes its key.
	e := mustEnrolment(t, s, ode.ID)
	next := *e
	next.State, next.SubmittedAt, next.TermsVersion = enrol.Submitted, base, "terms-1"
	next.GivenName, next.Surname = "Åsa", "Østby"
	inTx(t, s, func(tx enrol.Tx) error { return tx.Transition(e.ID, e.State, e.Rev, &next) })
	if got, err := s.ListEnrolments(ctx, store.EnrolmentQuery{Surname: "ØSTBY", GivenName: "åsa"}); err != nil || !slices.Equal(ids(got), []int64{ode.ID}) {
		t.Errorf("after renaming, ListEnrolments(ØSTBY) = %v, %v", ids(got), err)
	}
	if got, err := s.ListEnrolments(ctx, store.EnrolmentQuery{Surname: "ödegaard"}); err != nil || len(got) != 0 {
		t.Errorf("after renaming, ListEnrolments(ödegaard) = %v, %v; want none", ids(got), err)
	}
	if err := transition(s, mustEnrolment(t, s, oslo.ID), enrol.Cancelled); err != nil {
		t.Fatal(err)
	}

	// Certificates by the surname of their enrolment.
	issueFor(t, s, "1e", "n", "ode@example.net", "Ødegård", base)
	if got, err := s.ListCertificates(ctx, store.CertificateQuery{Surname: "ødegå"}); err != nil || len(got) != 1 || got[0].Serial != "1e" {
		t.Errorf("ListCertificates(ødegå) = %+v, %v", got, err)
	}

	// The counts: of policy n, and of all policies by state.
	counts, err := s.ConsolePolicyCounts(ctx)
	want := map[string]int{"invited": 1, "submitted": 1, "cancelled": 1, "issued": 1}
	if err != nil || !maps.Equal(counts["n"], want) {
		t.Errorf("ConsolePolicyCounts()[n] = %v, %v; want %v", counts["n"], err, want)
	}
	after, err := s.CountEnrolments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for state, n := range want {
		if d := after[enrol.State(state)] - before[enrol.State(state)]; d != n {
			t.Errorf("CountEnrolments()[%s] grew by %d, want %d", state, d, n)
		}
	}
}
