package main

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
)

// floorResult is the cost of the per-message protection alone, in CPU
// seconds per GiB of plaintext: the acceptor's Wrap (what a gateway does
// to a download) and Unwrap (to an upload), messages of the size a
// gateway's Conn sends (the largest whose token fits 65535 bytes).
type floorResult struct {
	wrap, unwrap float64
}

// pair establishes a context between our initiator (with the ticket d
// gets) and our acceptor on the gateway's keytab, in process.
func (e *env) pair(d *client.Dialer) (ini, acc *gssapi.Context, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	icfg, err := d.Config.Ticket(ctx)
	if err != nil {
		return nil, nil, err
	}
	kt, err := gssapi.LoadKeytab(e.keytab)
	if err != nil {
		return nil, nil, err
	}
	a, err := gssapi.NewAcceptor(gssapi.AcceptorConfig{Keytab: kt})
	if err != nil {
		return nil, nil, err
	}
	in, tok, err := gssapi.NewInitiator(icfg)
	if err != nil {
		return nil, nil, err
	}
	acc, rep, err := a.Accept(tok, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		return nil, nil, err
	}
	if ini, err = in.Complete(rep); err != nil {
		return nil, nil, err
	}
	return ini, acc, nil
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// floor measures Wrap and Unwrap of size bytes at level (integrity or
// confidentiality) on the thread's CPU clock, which other processes on a
// busy machine do not inflate.
func floor(ini, acc *gssapi.Context, level encap.Level, size int64) (floorResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	conf := level == encap.LevelConfidentiality
	n := acc.WrapSizeLimit(encap.MaxToken, conf)
	msg := constant[:n]
	dst := make([]byte, 0, encap.MaxToken+64)
	var r floorResult
	var done int64
	t0 := threadCPU()
	for ; done < size; done += int64(n) {
		if _, err := acc.Wrap(dst[:0], msg, conf); err != nil {
			return r, err
		}
	}
	r.wrap = perGiB(threadCPU()-t0, done)

	// Unwrap: tokens from the initiator, made a batch at a time outside
	// the measured time (Unwrap works in place and consumes them).
	const batch = 32
	toks := make([][]byte, batch)
	for i := range toks {
		toks[i] = make([]byte, 0, encap.MaxToken+64)
	}
	var spent time.Duration
	done = 0
	for done < size {
		for i := range toks {
			t, err := ini.Wrap(toks[i][:0], msg, conf)
			if err != nil {
				return r, err
			}
			toks[i] = t
		}
		t0 := threadCPU()
		for _, t := range toks {
			m, sealed, err := acc.Unwrap(t[:0], t)
			if err != nil {
				return r, err
			}
			if sealed != conf || len(m) != n {
				return r, fmt.Errorf("unwrap: %d bytes, sealed %t", len(m), sealed)
			}
		}
		spent += threadCPU() - t0
		done += batch * int64(n)
	}
	r.unwrap = perGiB(spent, done)
	return r, nil
}

func perGiB(d time.Duration, bytes int64) float64 {
	return d.Seconds() / (float64(bytes) / (1 << 30))
}
