package gssapi

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// heapDelta is the live heap make adds, in bytes, after a full collection
// before and after; what make returns stays live until the second reading.
func heapDelta(make func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := make()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
}

// contextUses are the ways a session uses its context, as the acceptor
// sees them: "established" (no token yet), "integrity" (RFC 1961's
// protection-level exchange, unsealed Wrap both ways, then integrity data),
// "confidentiality" (the same exchange, then sealed data both ways) and
// "mic" (MIC tokens only).
var contextUses = map[string]func(tb testing.TB, ini, acc *Context){
	"established": func(testing.TB, *Context, *Context) {},
	"integrity": func(tb testing.TB, ini, acc *Context) {
		exchangeTokens(tb, ini, acc, false, false)
		exchangeTokens(tb, ini, acc, false, false)
	},
	"confidentiality": func(tb testing.TB, ini, acc *Context) {
		exchangeTokens(tb, ini, acc, false, false)
		exchangeTokens(tb, ini, acc, true, false)
	},
	"mic": func(tb testing.TB, ini, acc *Context) {
		exchangeTokens(tb, ini, acc, false, true)
	},
}

// exchangeTokens sends one token each way between ini and acc: Wrap tokens
// (sealed when conf) or MIC tokens.
func exchangeTokens(tb testing.TB, ini, acc *Context, conf, mic bool) {
	msg := []byte{2}
	for _, p := range [][2]*Context{{ini, acc}, {acc, ini}} {
		if mic {
			if err := p[1].VerifyMIC(msg, p[0].GetMIC(nil, msg)); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		tok, err := p[0].Wrap(nil, msg, conf)
		if err != nil {
			tb.Fatal(err)
		}
		if _, _, err := p[1].Unwrap(nil, tok); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkContextHeap reports the live heap of an acceptor context in
// B/ctx, after each kind of use (contextUses), per enctype: what an idle
// session holds for its GSS-API context.
func BenchmarkContextHeap(b *testing.B) {
	const n = 2000
	for _, et := range []int32{EnctypeAES256SHA1, EnctypeAES256SHA384} {
		for _, use := range []string{"established", "integrity", "confidentiality", "mic"} {
			b.Run(fmt.Sprintf("%s/%s", EnctypeName(et), use), func(b *testing.B) {
				var per float64
				for b.Loop() {
					per = heapDelta(func() any {
						accs := make([]*Context, n)
						for i := range accs {
							ini, acc, _ := testPair(b, et, true)
							contextUses[use](b, ini, acc)
							accs[i] = acc
						}
						return accs
					}) / n
				}
				b.ReportMetric(per, "B/ctx")
			})
		}
	}
}

// BenchmarkReplayCacheEntry reports the live heap per replay cache entry
// in B/entry, after 100 000 authenticators of 64 principals (the default
// cap and share).
func BenchmarkReplayCacheEntry(b *testing.B) {
	const n = 100_000
	keys := make([]ReplayKey, n)
	for i := range keys {
		rand.Read(keys[i][:])
	}
	var owners [64]string
	for i := range owners {
		owners[i] = fmt.Sprintf("user%d@EXAMPLE.TEST", i)
	}
	now := time.Unix(1_700_000_000, 0)
	var per float64
	for b.Loop() {
		per = heapDelta(func() any {
			rc := NewReplayCache(0)
			for i, k := range keys {
				if err := rc.check(k, owners[i%len(owners)], now.Add(time.Duration(i)*time.Millisecond), 10*time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			return rc
		}) / n
	}
	b.ReportMetric(per, "B/entry")
}
