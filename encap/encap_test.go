package encap

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/testenv"
	"github.com/gssocks/gssocks/testenv/golden"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-ch
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

type side struct {
	ctx *gssapi.Context
	lvl Level
	err error
}

// handshake runs context establishment and the subnegotiation over TCP:
// the client asks want (NEC form if nec), the server answers choose.
func handshake(t *testing.T, c, s net.Conn, want Level, nec bool, choose LevelChooser) (cli, srv side) {
	t.Helper()
	env := realm.Get(t)
	acc := env.Acceptor(t, gssapi.AcceptorConfig{})
	in, tok := env.Initiator(t, "alice", "rcmd/localhost", "")
	done := make(chan side)
	go func() {
		var r side
		r.ctx, r.err = AcceptContext(s, acc, netip.MustParseAddr("127.0.0.1"))
		if r.err == nil {
			var n Negotiation
			n, r.err = NegotiateServer(s, r.ctx, choose)
			r.lvl = n.Granted
			if r.err == nil && n.NEC != nec {
				r.err = fmt.Errorf("NEC %t", n.NEC)
			}
		}
		if r.err != nil {
			s.Close() // as the server does
		}
		done <- r
	}()
	cli.ctx, cli.err = InitiateContext(c, in, tok)
	if cli.err == nil {
		cli.lvl, cli.err = NegotiateClient(c, cli.ctx, want, nec)
	}
	srv = <-done
	return cli, srv
}

func grant(l Level) LevelChooser {
	return func(Level, bool) (Level, error) { return l, nil }
}

func TestHandshakeLevels(t *testing.T) {
	for _, c := range []struct {
		want, grant Level
		nec         bool
	}{
		{LevelIntegrity, LevelIntegrity, false},
		{LevelConfidentiality, LevelConfidentiality, false},
		{LevelConfidentiality, LevelClear, false}, // curl >= 8.17 and an auth-only rule
		{LevelIntegrity, LevelConfidentiality, false},
		{LevelClear, LevelClear, true}, // curl 7.68 NEC
		{LevelConfidentiality, LevelConfidentiality, true},
	} {
		t.Run(fmt.Sprintf("%s->%s/nec=%t", c.want, c.grant, c.nec), func(t *testing.T) {
			cc, sc := tcpPair(t)
			var asked Level
			cli, srv := handshake(t, cc, sc, c.want, c.nec, func(req Level, nec bool) (Level, error) {
				asked = req
				return c.grant, nil
			})
			if cli.err != nil || srv.err != nil {
				t.Fatalf("client %v, server %v", cli.err, srv.err)
			}
			if asked != c.want || cli.lvl != c.grant || srv.lvl != c.grant {
				t.Fatalf("asked %s, client got %s, server granted %s", asked, cli.lvl, srv.lvl)
			}
		})
	}
}

func TestHandshakeRefusals(t *testing.T) {
	t.Run("chooser refuses", func(t *testing.T) {
		cc, sc := tcpPair(t)
		cli, srv := handshake(t, cc, sc, LevelSelective, false, func(Level, bool) (Level, error) {
			return 0, ErrLevelRefused
		})
		if !errors.Is(srv.err, ErrLevelRefused) {
			t.Fatalf("server: %v", srv.err)
		}
		if !errors.Is(cli.err, ErrAborted) {
			t.Fatalf("client should read an abort: %v", cli.err)
		}
	})
	t.Run("bad AP-REQ gets abort", func(t *testing.T) {
		cc, sc := tcpPair(t)
		acc := realm.Get(t).Acceptor(t, gssapi.AcceptorConfig{})
		done := make(chan error)
		go func() {
			_, err := AcceptContext(sc, acc, netip.Addr{})
			done <- err
		}()
		WriteMessage(cc, MsgAuth, []byte{0x60, 0x01, 0x00})
		if err := <-done; !errors.Is(err, gssapi.ErrDefectiveToken) {
			t.Fatalf("server: %v", err)
		}
		if _, _, err := ReadMessage(cc, nil); !errors.Is(err, ErrAborted) {
			t.Fatalf("client should read an abort: %v", err)
		}
	})
	t.Run("wrong mtyp", func(t *testing.T) {
		cc, sc := tcpPair(t)
		acc := realm.Get(t).Acceptor(t, gssapi.AcceptorConfig{})
		go WriteMessage(cc, MsgProtection, []byte{1})
		if _, err := AcceptContext(sc, acc, netip.Addr{}); !errors.Is(err, ErrUnexpectedType) {
			t.Fatalf("server: %v", err)
		}
	})
	t.Run("length beyond data", func(t *testing.T) {
		cc, sc := tcpPair(t)
		acc := realm.Get(t).Acceptor(t, gssapi.AcceptorConfig{})
		go func() {
			cc.Write([]byte{1, 1, 0x10, 0x00, 0x60, 0x00})
			cc.CloseWrite()
		}()
		if _, err := AcceptContext(sc, acc, netip.Addr{}); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("server: %v", err)
		}
	})
	t.Run("greeting instead of token", func(t *testing.T) {
		cc, sc := tcpPair(t)
		acc := realm.Get(t).Acceptor(t, gssapi.AcceptorConfig{})
		go cc.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
		if _, err := AcceptContext(sc, acc, netip.Addr{}); !errors.Is(err, ErrRawSOCKS) {
			t.Fatalf("server: %v", err)
		}
	})
}

// TestConnTransfer moves random payloads both ways at both levels, checked
// by SHA-256, with half-close ending each direction.
func TestConnTransfer(t *testing.T) {
	for _, lvl := range []Level{LevelIntegrity, LevelConfidentiality} {
		for _, size := range []int{0, 1, 65471, 65504, 1 << 20, 8 << 20} {
			t.Run(fmt.Sprintf("%s/%d", lvl, size), func(t *testing.T) {
				cc, sc := tcpPair(t)
				cli, srv := handshake(t, cc, sc, lvl, false, grant(lvl))
				if cli.err != nil || srv.err != nil {
					t.Fatal(cli.err, srv.err)
				}
				pool := NewPool()
				c, _ := NewConn(cc, cli.ctx, lvl, ConnOptions{Pool: pool})
				s, _ := NewConn(sc, srv.ctx, lvl, ConnOptions{MaxPlaintext: 1000})
				up, down := make([]byte, size), make([]byte, size/2)
				rand.Read(up)
				rand.Read(down)
				errc := make(chan error, 2)
				got := make(chan [32]byte, 1)
				go func() { // server: read all, then answer
					h := sha256.New()
					if _, err := io.Copy(h, s); err != nil {
						errc <- err
						return
					}
					got <- [32]byte(h.Sum(nil))
					_, err := io.Copy(s, bytes.NewReader(down))
					if err == nil {
						err = s.CloseWrite()
					}
					errc <- err
				}()
				go func() {
					_, err := io.Copy(c, bytes.NewReader(up))
					if err == nil {
						err = c.CloseWrite()
					}
					errc <- err
				}()
				back, err := io.ReadAll(c)
				if err != nil {
					t.Fatal(err)
				}
				for range 2 {
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
				}
				if <-got != sha256.Sum256(up) || !bytes.Equal(back, down) {
					t.Fatal("data differs")
				}
				c.Close()
				c.Release()
			})
		}
	}
}

func TestConnRefusals(t *testing.T) {
	setup := func(t *testing.T, lvl Level) (*Conn, *net.TCPConn, *gssapi.Context) {
		cc, sc := tcpPair(t)
		cli, srv := handshake(t, cc, sc, lvl, false, grant(lvl))
		if cli.err != nil || srv.err != nil {
			t.Fatal(cli.err, srv.err)
		}
		s, _ := NewConn(sc, srv.ctx, lvl, ConnOptions{})
		return s, cc, cli.ctx
	}
	t.Run("integrity token at confidentiality", func(t *testing.T) {
		s, cc, ctx := setup(t, LevelConfidentiality)
		c, _ := NewConn(cc, ctx, LevelIntegrity, ConnOptions{})
		go c.Write([]byte("hello"))
		if _, err := s.Read(make([]byte, 10)); !errors.Is(err, ErrProtection) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("raw SOCKS request after protection was agreed", func(t *testing.T) {
		s, cc, _ := setup(t, LevelConfidentiality)
		go cc.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
		if _, err := s.Read(make([]byte, 10)); !errors.Is(err, ErrRawSOCKS) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("replayed token", func(t *testing.T) {
		s, cc, ctx := setup(t, LevelIntegrity)
		msg, _ := AppendMessage(nil, MsgEncapsulated, mustWrap(t, ctx, "once"))
		go cc.Write(append(bytes.Clone(msg), msg...))
		buf := make([]byte, 10)
		if n, err := s.Read(buf); err != nil || string(buf[:n]) != "once" {
			t.Fatalf("first: %v", err)
		}
		if _, err := s.Read(buf); !errors.Is(err, gssapi.ErrUnseqToken) {
			t.Fatalf("replay: %v", err)
		}
	})
	t.Run("truncated message", func(t *testing.T) {
		s, cc, ctx := setup(t, LevelIntegrity)
		msg, _ := AppendMessage(nil, MsgEncapsulated, mustWrap(t, ctx, "cut short"))
		go func() { cc.Write(msg[:len(msg)-3]); cc.CloseWrite() }()
		if _, err := s.Read(make([]byte, 10)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("abort", func(t *testing.T) {
		s, cc, _ := setup(t, LevelIntegrity)
		go WriteAbort(cc)
		if _, err := s.Read(make([]byte, 10)); !errors.Is(err, ErrAborted) {
			t.Fatalf("got %v", err)
		}
	})
}

func mustWrap(t *testing.T, ctx *gssapi.Context, s string) []byte {
	t.Helper()
	tok, err := ctx.Wrap(nil, []byte(s), false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDatagrams(t *testing.T) {
	for _, lvl := range []Level{LevelIntegrity, LevelConfidentiality} {
		ini, acc := realm.Get(t).Pair(t, "alice", "")
		cd, _ := NewDatagram(ini, lvl)
		sd, _ := NewDatagram(acc, lvl)
		var pkts [][]byte
		for i := range 5 {
			p, err := cd.Seal(nil, []byte{0, 0, 0, 1, 127, 0, 0, 1, 0, 7, byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, p)
		}
		for _, i := range []int{1, 0, 4} {
			msg, err := sd.Open(bytes.Clone(pkts[i]))
			if err != nil || msg[10] != byte(i) {
				t.Fatalf("%s datagram %d: %v", lvl, i, err)
			}
		}
		if _, err := sd.Open(bytes.Clone(pkts[4])); !errors.Is(err, gssapi.ErrDuplicateToken) {
			t.Fatalf("replayed datagram: %v", err)
		}
		bad := bytes.Clone(pkts[2])
		bad[3]++
		if _, err := sd.Open(bad); !errors.Is(err, ErrBadLength) {
			t.Fatalf("bad length: %v", err)
		}
		back, _ := sd.Seal(nil, []byte("reply"))
		if msg, err := cd.Open(back); err != nil || string(msg) != "reply" {
			t.Fatalf("reply: %v", err)
		}
	}
}

// TestGoldenFraming reads every captured direction (Dante, curl) with
// ReadMessage and gets the same messages back.
func TestGoldenFraming(t *testing.T) {
	n := 0
	for _, name := range golden.Names() {
		c, err := golden.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.Streams {
			for _, d := range []golden.Direction{s.ToServer, s.ToClient} {
				wire, err := d.Encode()
				if err != nil {
					t.Fatal(err)
				}
				r := bytes.NewReader(wire[len(d.Greeting):])
				for i, m := range d.Messages {
					mtyp, tok, err := ReadMessage(r, nil)
					if MsgType(m.Mtyp) == MsgAbort {
						if !errors.Is(err, ErrAborted) {
							t.Fatalf("%s: abort: %v", name, err)
						}
						continue
					}
					if err != nil || mtyp != MsgType(m.Mtyp) || !bytes.Equal(tok, m.Token) {
						t.Fatalf("%s message %d: %v", name, i, err)
					}
					n++
				}
				if len(d.Raw) > 0 {
					if _, _, err := ReadMessage(r, nil); !errors.Is(err, ErrRawSOCKS) {
						t.Fatalf("%s: raw data after the messages: %v", name, err)
					}
				}
			}
		}
	}
	t.Logf("%d captured messages", n)
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{1, 1, 0, 3, 0x60, 1, 0})
	f.Add([]byte{1, 0xff})
	f.Add([]byte{5, 1, 0, 1})
	f.Add([]byte{1, 3, 0xff, 0xff, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		mtyp, tok, err := ReadMessage(bytes.NewReader(b), nil)
		if err == nil && (len(tok) != len(b)-headerLen && len(tok) > len(b)-headerLen || mtyp == MsgAbort) {
			t.Fatalf("mtyp %s, %d-byte token from %d bytes", mtyp, len(tok), len(b))
		}
	})
}

func FuzzDatagramOpen(f *testing.F) {
	f.Add([]byte{1, 3, 0, 2, 5, 4})
	// The acceptor end of a fresh context: every datagram not sealed by
	// its initiator must be refused cleanly.
	_, acc := realm.Get(f).Pair(f, "alice", "")
	d, _ := NewDatagram(acc, LevelConfidentiality)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := d.Open(b); err == nil {
			t.Fatal("accepted a datagram no one sealed")
		}
	})
}

// byteConn is a net.Conn that reads from a fixed byte slice.
type byteConn struct {
	net.Conn // nil: only Read is used
	r        *bytes.Reader
}

func (b byteConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// FuzzConnRead feeds an arbitrary byte stream to the data-phase reader:
// it must end in an error or EOF, never a panic, and never return data no
// peer wrapped.
func FuzzConnRead(f *testing.F) {
	ini, acc := realm.Get(f).Pair(f, "alice", "")
	tok, _ := ini.Wrap(nil, []byte("seed"), true)
	msg, _ := AppendMessage(nil, MsgEncapsulated, tok)
	f.Add(msg)
	f.Add([]byte{1, 3, 0xff, 0xff, 1, 2})
	f.Add([]byte{5, 1, 0, 1})
	f.Add([]byte{1, 0xff})
	f.Fuzz(func(t *testing.T, stream []byte) {
		c, _ := NewConn(byteConn{r: bytes.NewReader(stream)}, acc, LevelConfidentiality, ConnOptions{})
		n, err := io.Copy(io.Discard, c)
		if err == nil && n > 0 && !bytes.Equal(stream, msg) {
			t.Fatalf("%d bytes of data from a stream no one wrapped", n)
		}
	})
}
