package gateway

import (
	"fmt"
	"testing"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHandshakeOutcome pins the outcome labels of the acceptor's
// sentinel errors, wrapped as the server wraps them.
func TestHandshakeOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{gssapi.ErrReplay, OutcomeReplay},
		{gssapi.ErrSkew, OutcomeSkew},
		{gssapi.ErrTicketNotYetValid, OutcomeSkew},
		{gssapi.ErrPrincipalNotAllowed, OutcomeUnknownPrincipal},
		{gssapi.ErrNoKey, OutcomeUnknownPrincipal},
		{gssapi.ErrDefectiveToken, OutcomeBadToken},
		{gssapi.ErrBadIntegrity, OutcomeBadToken},
		{gssapi.ErrReplayCacheFull, OutcomeOther},
		{fmt.Errorf("other"), OutcomeOther},
	} {
		err := tc.err
		if err != nil {
			err = fmt.Errorf("authentication: %w", err)
		}
		if got := HandshakeOutcome(err); got != tc.want {
			t.Errorf("HandshakeOutcome(%v) = %q, want %q", err, got, tc.want)
		}
	}
}

// TestRuleLabelsBounded: past MaxRuleLabels distinct rule names, decisions
// are counted under "other", and the names already seen keep their own
// series.
func TestRuleLabelsBounded(t *testing.T) {
	m := newMetrics("")
	for i := range MaxRuleLabels + 10 {
		m.sessionEnd(audit.Record{Rule: fmt.Sprintf("r%d", i), EndReason: audit.EndCompleted})
	}
	m.sessionEnd(audit.Record{Rule: "r0", EndReason: audit.EndCompleted})
	if n := testutil.CollectAndCount(m.rules); n != MaxRuleLabels+1 {
		t.Errorf("rule series: %d, want %d", n, MaxRuleLabels+1)
	}
	if v := testutil.ToFloat64(m.rules.WithLabelValues("other")); v != 10 {
		t.Errorf("other: %v, want 10", v)
	}
	if v := testutil.ToFloat64(m.rules.WithLabelValues("r0")); v != 2 {
		t.Errorf("r0: %v, want 2", v)
	}
}
