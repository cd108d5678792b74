package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// Connection Attempt Delay bounds (RFC 8305 §5). A fixed delay below the
// recommended minimum would turn one CONNECT into a burst of SYNs toward
// every address of a name; above the maximum a dead first address costs the
// client more than most clients wait.
const (
	defaultAttemptDelay = 250 * time.Millisecond
	minAttemptDelay     = 100 * time.Millisecond
	maxAttemptDelay     = 2 * time.Second

	// maxAttemptsInFlight bounds the sockets one dial holds at once. Past it
	// the next address starts only when an attempt fails; with the default
	// delay the cap is reached after 1.75 s of silence, by when a live
	// address among the first ones would have answered.
	maxAttemptsInFlight = 8

	// maxErrorsListed bounds the error text of a failed race (it ends up in
	// the log and the audit record's reason).
	maxErrorsListed = 4
)

// errNoAddress is returned by DialRace when no valid address was given.
var errNoAddress = errors.New("server: no address to dial")

// raceDialer opens a TCP connection to the first of several addresses of one
// destination that answers, racing them as RFC 8305 (Happy Eyeballs v2) §4-5
// describes. It dials only the addresses it is given (those the policy
// accepted) and never resolves anything.
type raceDialer struct {
	// Dial opens one connection (default: a zero net.Dialer's DialContext).
	// It must return once ctx is done; a conn it returns after that is
	// closed.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// AttemptDelay is how long an attempt runs alone before the next address
	// is tried as well (RFC 8305 §5 "Connection Attempt Delay"). Zero means
	// 250 ms; values are held within [100 ms, 2 s].
	AttemptDelay time.Duration
}

func (d raceDialer) attemptDelay() time.Duration {
	switch {
	case d.AttemptDelay == 0:
		return defaultAttemptDelay
	case d.AttemptDelay < minAttemptDelay:
		return minAttemptDelay
	case d.AttemptDelay > maxAttemptDelay:
		return maxAttemptDelay
	}
	return d.AttemptDelay
}

// attemptResult is what one attempt's goroutine sends back, exactly once.
type attemptResult struct {
	i    int // index into the race order
	conn net.Conn
	err  error
}

// DialRace connects over TCP to port on one of addrs and returns the
// connection and the address it reached.
//
// The addresses are tried in raceOrder (families interleaved, RFC 8305 §4).
// The first attempt starts at once; each next one starts when the previous
// has run for the attempt delay without an answer, or at once when an
// attempt fails (§5); at most 8 run at a time. The first connection
// established wins: every other attempt is cancelled, and a connection that
// still completes is closed. ctx bounds the whole race (the caller puts the
// connect timeout in it, one deadline for all addresses); addresses not
// started by then are not tried.
//
// DialRace returns only after every attempt it started has ended, so it
// leaves no goroutine or socket behind. When all attempts fail, the error is
// the most telling one (see failureRank), for replyFor to map to a reply
// code; with several addresses it is a *raceError listing the others too.
// An empty or all-invalid addrs gives errNoAddress.
func (d raceDialer) DialRace(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, netip.AddrPort, error) {
	order := raceOrder(addrs)
	if len(order) == 0 {
		return nil, netip.AddrPort{}, errNoAddress
	}
	dial := d.Dial
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	delay := d.attemptDelay()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Each attempt sends once and the loop below drains every one, so a
	// buffer of the in-flight bound means no send ever blocks.
	results := make(chan attemptResult, maxAttemptsInFlight)
	timer := time.NewTimer(delay)
	defer timer.Stop()

	var (
		errs     = make([]error, len(order))
		next     int // next index of order to start
		inFlight int
		winner   net.Conn
		won      = -1
	)
	startNext := func() {
		if winner != nil || next >= len(order) || inFlight >= maxAttemptsInFlight || ctx.Err() != nil {
			return
		}
		// The dialer's own deadline timer can fire before ctx's: an attempt
		// that just timed out must not start another past the deadline.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return
		}
		i := next
		next++
		inFlight++
		go attempt(ctx, dial, i, netip.AddrPortFrom(order[i], port), results)
		timer.Reset(delay)
	}

	startNext()
	done := ctx.Done()
	for inFlight > 0 {
		select {
		case r := <-results:
			inFlight--
			switch {
			case r.err != nil:
				errs[r.i] = r.err
				startNext()
			case winner == nil:
				winner, won = r.conn, r.i
				cancel()
			default:
				r.conn.Close()
			}
		case <-timer.C:
			startNext()
		case <-done:
			// The attempts share ctx and end by themselves; stop waking up.
			done = nil
		}
	}
	if winner != nil {
		return winner, netip.AddrPortFrom(order[won], port), nil
	}
	return nil, netip.AddrPort{}, raceFailure(errs, next)
}

// attempt is one connection attempt's goroutine. A panic in dial (an
// injected one) ends this attempt only, as a failure.
func attempt(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), i int, ap netip.AddrPort, results chan<- attemptResult) {
	r := attemptResult{i: i}
	defer func() {
		if p := recover(); p != nil {
			r = attemptResult{i: i, err: fmt.Errorf("dial tcp %s: panic in dialer: %v", ap, p)}
		}
		results <- r
	}()
	r.conn, r.err = dial(ctx, "tcp", ap.String())
	if r.err == nil && r.conn == nil {
		r.err = fmt.Errorf("dial tcp %s: dialer returned no connection", ap)
	}
}

// raceOrder is the order DialRace tries addrs in (RFC 8305 §4): invalid
// addresses and repeats dropped, then the two families alternating,
// starting with the family of the first address and keeping the given
// order within each family. The resolver's list is already sorted by
// RFC 6724 (IPv6 first where the host has IPv6 routes), so leading with
// its first family keeps that preference without wasting the first attempt
// on a family the host cannot reach. An IPv4-mapped IPv6 address counts as
// IPv4 (that is what the kernel dials); addresses are returned as given.
func raceOrder(addrs []netip.Addr) []netip.Addr {
	var v4, v6 []netip.Addr
	seen := make(map[netip.Addr]struct{}, len(addrs))
	first4 := false
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		key := a.Unmap()
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		if key.Is4() {
			if len(v4)+len(v6) == 0 {
				first4 = true
			}
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	lead, other := v6, v4
	if first4 {
		lead, other = v4, v6
	}
	out := make([]netip.Addr, 0, len(v4)+len(v6))
	for i := 0; i < len(lead) || i < len(other); i++ {
		if i < len(lead) {
			out = append(out, lead[i])
		}
		if i < len(other) {
			out = append(out, other[i])
		}
	}
	return out
}

// failureRank orders dial failures by how much they say about the
// destination, for the reply code of a race where every attempt failed: a
// refusal comes from the destination host itself (REP 05), an unreachable
// host from a router on the way (04), a timeout means nothing answered
// (04), and an unreachable network is about this host's routes, the usual
// fate of every IPv6 address on an IPv4-only gateway, so it must not hide
// what the other family found (03). Anything else (a local error, a
// cancellation) ranks last (01).
func failureRank(err error) int {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return 4
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return 3
	case isTimeout(err):
		return 2
	case errors.Is(err, syscall.ENETUNREACH):
		return 1
	}
	return 0
}

func isTimeout(err error) bool {
	if errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// raceError is a race in which every attempt failed. Unwrap gives the most
// telling attempt's error (failureRank; the earliest in race order among
// equals), so errors.Is and replyFor see that one.
type raceError struct {
	primary error
	others  []error // the other attempts' errors, in race order
	untried int     // addresses not started before the race ended
}

func (e *raceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no address answered: %v", e.primary)
	for i, err := range e.others {
		if i == maxErrorsListed {
			fmt.Fprintf(&b, "; and %d more", len(e.others)-i)
			break
		}
		fmt.Fprintf(&b, "; %v", err)
	}
	if e.untried > 0 {
		fmt.Fprintf(&b, "; %d not tried in time", e.untried)
	}
	return b.String()
}

func (e *raceError) Unwrap() error { return e.primary }

// raceFailure builds the error of a race where no attempt succeeded; errs
// is indexed by race order, started is how many attempts began.
func raceFailure(errs []error, started int) error {
	best := -1
	for i, err := range errs[:started] {
		if best < 0 || failureRank(err) > failureRank(errs[best]) {
			best = i
		}
	}
	untried := len(errs) - started
	if started == 1 && untried == 0 {
		return errs[0]
	}
	e := &raceError{primary: errs[best], untried: untried}
	for i, err := range errs[:started] {
		if i != best {
			e.others = append(e.others, err)
		}
	}
	return e
}
