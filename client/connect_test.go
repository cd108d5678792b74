package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/testutil"
)

// server is a gateway under test.
type server struct {
	name string
	addr func(t testing.TB) string
}

func servers() []server {
	return []server{
		{"gssocks", func(t testing.TB) string { return gssocksGateway(t).addr }},
		{"dante", danteGateway},
	}
}

var levelsUnderTest = []encap.Level{encap.LevelClear, encap.LevelIntegrity, encap.LevelConfidentiality}

// newDialer is New with the test realm's krb5.conf for enctype and alice's
// password unless opts says otherwise.
func newDialer(t testing.TB, gateway, enctype string, opts client.Options) *client.Dialer {
	t.Helper()
	opts.Gateway = gateway
	if opts.Krb5Conf == "" {
		opts.Krb5Conf = krb5Conf(t, enctype)
	}
	if opts.Password == "" && opts.Keytab == "" && opts.CCache == "" {
		opts.Principal, opts.Password = "alice", password("alice")
	}
	d, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestConnectMatrix is our initiator against gssocks' acceptor and against
// MIT's (Dante's sockd): CONNECT at levels 0, 1 and 2 with session keys of
// each AES enctype, a SHA-256-checked echo both ways, with the session's
// level and enctype checked on our side and, for Dante, in sockd's log.
func TestConnectMatrix(t *testing.T) {
	echo := testutil.EchoServer(t)
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			gw := srv.addr(t)
			for _, enc := range aesEnctypes {
				for _, lvl := range levelsUnderTest {
					t.Run(fmt.Sprintf("%d-%s/%s", enc.id, enc.name, lvl), func(t *testing.T) {
						d := newDialer(t, gw, enc.name, levelOptions(lvl))
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						s, err := clientSession(ctx, d)
						if err != nil {
							t.Fatal(err)
						}
						if s.Level != lvl || s.Context.Enctype() != enc.id {
							t.Fatalf("session at %s with enctype %d, want %s and %d", s.Level, s.Context.Enctype(), lvl, enc.id)
						}
						s.Close()
						c, err := d.DialContext(ctx, "tcp", echo)
						if err != nil {
							t.Fatal(err)
						}
						defer c.Close()
						echoRoundTrip(t, c, 200<<10+7)
					})
				}
			}
		})
	}
	t.Run("dante-log", func(t *testing.T) {
		log := sockdLog("sockd")
		for _, lvl := range levelsUnderTest {
			if want := "gssapi/" + lvl.String() + "%alice@" + realmName; !strings.Contains(log, want) {
				t.Errorf("sockd's log shows no session %s", want)
			}
		}
	})
}

// levelOptions asks exactly lvl.
func levelOptions(lvl encap.Level) client.Options {
	if lvl == encap.LevelClear {
		return client.Options{AskClear: true}
	}
	return client.Options{Level: lvl, MinLevel: lvl}
}

// clientSession opens a session the way the Dialer does, to look at it.
func clientSession(ctx context.Context, d *client.Dialer) (*client.Session, error) {
	return client.Open(ctx, d.Proxy, d.Config)
}

// TestLargeTransfer: 64 MiB from a destination through each gateway at
// confidentiality, SHA-256 checked.
func TestLargeTransfer(t *testing.T) {
	data, want := payload(64<<20, 64)
	src := sourceServer(t, data)
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			d := newDialer(t, srv.addr(t), "", client.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", src)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil || n != int64(len(data)) || [32]byte(h.Sum(nil)) != want {
				t.Fatalf("got %d of %d bytes, %v, digest ok %t", n, len(data), err, [32]byte(h.Sum(nil)) == want)
			}
		})
	}
}

// TestUDPEcho: datagrams through a UDP association at each level, echoed
// back by a destination; the association ends with its control
// connection.
func TestUDPEcho(t *testing.T) {
	echo := udpEcho(t)
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			gw := srv.addr(t)
			for _, lvl := range levelsUnderTest {
				t.Run(lvl.String(), func(t *testing.T) {
					d := newDialer(t, gw, "", levelOptions(lvl))
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					pc, err := d.ListenPacket(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer pc.Close()
					if pc.Level() != lvl {
						t.Fatalf("association at %s", pc.Level())
					}
					buf := make([]byte, 65536)
					for i, size := range []int{1, 512, 1400, 8000} {
						msg, _ := payload(size, uint64(i))
						var got []byte
						// UDP may drop: retry a few times.
						for try := 0; try < 5 && got == nil; try++ {
							if _, err := pc.WriteTo(msg, echo); err != nil {
								t.Fatal(err)
							}
							pc.SetReadDeadline(time.Now().Add(time.Second))
							n, from, err := pc.ReadFrom(buf)
							if err != nil {
								continue
							}
							if from.String() != echo.String() {
								t.Fatalf("datagram from %s, want %s", from, echo)
							}
							got = buf[:n]
						}
						if !bytes.Equal(got, msg) {
							t.Fatalf("datagram of %d bytes: got %d bytes back", size, len(got))
						}
					}
				})
			}
		})
	}
}

// TestBind: the gateway accepts one inbound connection for us (BIND); we
// talk with the peer through it, SHA-256 checked.
func TestBind(t *testing.T) {
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			d := newDialer(t, srv.addr(t), "", client.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ln, err := d.Listen(ctx, "tcp", "0.0.0.0:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			peerErr := make(chan error, 1)
			go func() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					peerErr <- err
					return
				}
				defer c.Close()
				_, err = io.Copy(c, c) // the peer echoes
				c.(*net.TCPConn).CloseWrite()
				peerErr <- err
			}()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			echoRoundTrip(t, c, 300<<10)
			if err := <-peerErr; err != nil {
				t.Fatal(err)
			}
			if _, err := ln.Accept(); err == nil {
				t.Fatal("a second Accept succeeded")
			}
		})
	}
}

// TestNEC: the protection level in the NEC form (a raw byte) on request,
// with gssocks (nec = true in the rule) and with Dante's sockd
// (clientcompatibility: necgssapi), which show the form in their logs.
func TestNEC(t *testing.T) {
	e := env(t)
	echo := testutil.EchoServer(t)
	for _, srv := range []server{
		{"gssocks", func(t testing.TB) string { return gssocksGateway(t).addr }},
		{"dante", func(t testing.TB) string {
			addr, stop, err := startSockd(e, danteInstall(t), "sockd-nec", nil, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stop() })
			return addr
		}},
	} {
		t.Run(srv.name, func(t *testing.T) {
			gw := srv.addr(t)
			for _, lvl := range []encap.Level{encap.LevelIntegrity, encap.LevelConfidentiality} {
				opts := levelOptions(lvl)
				opts.NEC = true
				d := newDialer(t, gw, "", opts)
				c, err := d.DialContext(context.Background(), "tcp", echo)
				if err != nil {
					t.Fatalf("%s: %v", lvl, err)
				}
				echoRoundTrip(t, c, 20000)
				c.Close()
			}
		})
	}
	if log := gssocksGateway(t).logs(); !strings.Contains(log, "nec=true") {
		t.Errorf("gssocks' log shows no NEC-form session")
	}
	// The NEC form really is another form: a sockd without NEC
	// compatibility cannot unwrap it and closes.
	d := newDialer(t, danteGateway(t), "", client.Options{Level: encap.LevelIntegrity, NEC: true})
	if _, err := d.DialContext(context.Background(), "tcp", echo); !errors.Is(err, encap.ErrLevelRefused) {
		t.Fatalf("NEC form to a sockd without NEC compatibility: %v", err)
	}
}
