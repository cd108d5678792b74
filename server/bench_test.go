package server_test

import (
	"context"
	"testing"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
)

// BenchmarkSessionSetup measures whole sessions through the gateway on
// loopback: TCP connect, greeting, GSS-API context (AP-REQ verify, AP-REP),
// protection level, CONNECT to an echo server, close. The client (our Go
// initiator, a fresh authenticator per session) runs in the same process,
// so this is a lower bound of the gateway's rate.
func BenchmarkSessionSetup(b *testing.B) {
	for _, lvl := range []encap.Level{encap.LevelClear, encap.LevelConfidentiality} {
		b.Run(lvl.String(), func(b *testing.B) {
			g := startGateway(b, allowAll)
			dest := echoServer(b)
			icfg, err := g.env.InitiatorConfig("alice", "rcmd/localhost", "")
			if err != nil {
				b.Fatal(err)
			}
			d := client.Dialer{Proxy: g.Addr, Config: client.Config{Level: lvl, Ticket: func(context.Context) (gssapi.InitiatorConfig, error) { return icfg, nil }}}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, err := d.DialContext(context.Background(), "tcp", dest)
					if err != nil {
						b.Error(err)
						return
					}
					c.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
}
