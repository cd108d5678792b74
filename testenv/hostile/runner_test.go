package hostile

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Timing of every gateway the suite runs.
const (
	// Negotiation is the configured negotiation timeout.
	Negotiation = 3 * time.Second
	// Quick bounds the reaction to malformed input: well under
	// Negotiation, so a gateway that only stops a bad client by its
	// timeout fails.
	Quick = 1500 * time.Millisecond
	// timeoutSlack is how late after Negotiation a slow client may be cut.
	timeoutSlack = 1500 * time.Millisecond
	// logWait is how long a case waits for its log line after its outcome.
	logWait = 3 * time.Second
)

// Case is one hostile client.
type Case struct {
	Name string
	// Issue is the item of issue 8 the case pins ("8.1"), "" for the
	// classic ones.
	Issue string
	// XFail: the fix is not in this tree; failing is expected, passing
	// fails the test until XFail is removed.
	XFail bool
	// Profile names the gateway configuration (see profiles).
	Profile string
	// Fresh runs the case on a gateway of its own (XFail cases always
	// do, so that what they break cannot fail the cases after them).
	Fresh bool
	// Send describes the bytes or actions, Want the expected outcome
	// (for the report).
	Send, Want string
	// Log is a regular expression (case-insensitive) the gateway's log
	// must match between the start of the case and logWait after it.
	Log string
	// Run plays the client and checks the outcome and its timing.
	Run func(c *Ctx) error
}

// setupError is a failure of the suite's own preparation (a good client
// step that must work for the attack to mean anything); it fails the test
// even in an XFail case.
type setupError struct{ err error }

func (e *setupError) Error() string { return "setup: " + e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

func setupf(format string, args ...any) error {
	return &setupError{fmt.Errorf(format, args...)}
}

// Ctx is what a case's Run gets: the world and its gateway.
type Ctx struct {
	W *World
	G *Gateway
	t *testing.T
}

// Logf logs into the case's test.
func (c *Ctx) Logf(format string, args ...any) { c.t.Helper(); c.t.Logf(format, args...) }

// Result is a case's outcome, for the summary.
type Result struct {
	Case   *Case
	Status string // PASS, XFAIL, FAIL, XPASS (an XFail case that passed)
	Err    error
}

// Run runs the cases in order, each as a subtest followed by a health
// check, and returns the results.
func Run(parent *testing.T, w *World, cases []Case) []Result {
	shared := map[string]*Gateway{}
	var results []Result
	for i := range cases {
		cs := &cases[i]
		res := Result{Case: cs}
		parent.Run(cs.Name, func(t *testing.T) {
			res.Err = runCase(parent, t, w, cs, shared)
			var se *setupError
			switch {
			case errors.As(res.Err, &se):
				res.Status = "FAIL"
				t.Fatalf("%v", res.Err)
			case cs.XFail && res.Err == nil:
				res.Status = "XPASS"
				t.Errorf("case passes but is marked XFail (issue %s): the fix is in, remove XFail", cs.Issue)
			case cs.XFail:
				res.Status = "XFAIL"
				t.Logf("XFAIL (issue %s): expected to fail until issue 8 item %s is fixed: %v", cs.Issue, cs.Issue, res.Err)
			case res.Err != nil:
				res.Status = "FAIL"
				t.Errorf("want %s: %v", cs.Want, res.Err)
			default:
				res.Status = "PASS"
			}
		})
		if res.Status != "" { // "": left out by -run
			results = append(results, res)
		}
	}
	return results
}

// runCase runs one case in t; shared gateways live as long as parent.
func runCase(parent, t *testing.T, w *World, cs *Case, shared map[string]*Gateway) error {
	p, ok := profiles()[cs.Profile]
	if !ok {
		return setupf("unknown profile %q", cs.Profile)
	}
	g := shared[cs.Profile]
	own := cs.Fresh || cs.XFail
	if g == nil || own {
		owner := parent
		if own {
			owner = t
		}
		var err error
		if g, err = startGateway(owner, w, p); err != nil {
			return err
		}
		if !own {
			shared[cs.Profile] = g
		}
	}
	c := &Ctx{W: w, G: g, t: t}
	from := len(g.Log())
	start := time.Now()
	if err := cs.Run(c); err != nil {
		var se *setupError
		if errors.As(err, &se) {
			return err
		}
		if herr := c.Health(); herr != nil {
			return fmt.Errorf("%w (and the health check failed too: %v)", err, herr)
		}
		return fmt.Errorf("%w (the gateway still serves a good client)", err)
	}
	t.Logf("outcome as expected after %v", time.Since(start).Round(time.Millisecond))
	if cs.Log != "" {
		re := regexp.MustCompile("(?i)" + cs.Log)
		if !g.WaitLog(re, from, logWait) {
			return fmt.Errorf("no log line matching %q; the case's log:\n%s", cs.Log, redact(tail(g.Log()[from:], 40), w.Keys))
		}
	}
	if err := c.Health(); err != nil {
		// %v: a broken gateway is the case's failure, not the suite's.
		return fmt.Errorf("health check after the case: %v", err)
	}
	if bad := regexp.MustCompile(`(?i)panic|DATA RACE`).FindString(g.Log()[from:]); bad != "" {
		return fmt.Errorf("gateway log shows %q:\n%s", bad, redact(tail(g.Log()[from:], 80), w.Keys))
	}
	return nil
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("[... %d lines]", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

// Summary renders the results as a table.
func Summary(results []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s %-5s %-62s %s\n", "RESULT", "ISSUE", "CASE", "EXPECTED")
	for _, r := range results {
		issue := r.Case.Issue
		if issue == "" {
			issue = "-"
		}
		fmt.Fprintf(&b, "%-6s %-5s %-62s %s\n", r.Status, issue, r.Case.Name, r.Case.Want)
	}
	return b.String()
}

// Health checks that a good client is served: alice authenticates at
// confidentiality, connects to the echo service and gets 4 KiB back.
func (c *Ctx) Health() error {
	if !c.G.Alive() {
		return fmt.Errorf("gateway exited: %v\n%s", c.G.exitErr(), redact(tail(c.G.Log(), 40), c.W.Keys))
	}
	s, err := c.Connected("alice", c.W.Echo.String())
	if err != nil {
		return err
	}
	defer s.Close()
	return s.RoundTrip(4096)
}

// isReset tells a connection reset from other read errors.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}
