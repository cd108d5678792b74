package encap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/gssocks/gssocks/gssapi"
)

// establish runs context establishment over a loopback connection with a
// real ticket from the test realm and returns both ends and contexts.
func establish(t *testing.T) (cc, sc *net.TCPConn, cli, srv *gssapi.Context) {
	t.Helper()
	cc, sc = tcpPair(t)
	env := realm.Get(t)
	acc := env.Acceptor(t, gssapi.AcceptorConfig{})
	in, tok := env.Initiator(t, "alice", "rcmd/localhost", "")
	done := make(chan error, 1)
	go func() {
		var err error
		srv, err = AcceptContext(sc, acc, netip.MustParseAddr("127.0.0.1"))
		done <- err
	}()
	cli, err := InitiateContext(cc, in, tok)
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return cc, sc, cli, srv
}

// TestNegotiationAbort: a server that answers no protection level sends the
// RFC 1961 §3 abort message 01 ff and nothing else before closing, whether
// the level is refused (by the chooser, or never allowed) or the
// subnegotiation fails (GSS-API, framing); but not to a client that
// aborted or left first.
func TestNegotiationAbort(t *testing.T) {
	refuse := func(Level, bool) (Level, error) { return 0, ErrLevelRefused }
	// The policy's shape: clear, integrity, confidentiality, never
	// selective.
	noSelective := func(l Level, _ bool) (Level, error) {
		if l > LevelConfidentiality {
			return 0, ErrLevelRefused
		}
		return l, nil
	}
	wrapped := func(lvl Level) func(*testing.T, *gssapi.Context) []byte {
		return func(t *testing.T, ctx *gssapi.Context) []byte {
			tok, err := ctx.Wrap(nil, []byte{byte(lvl)}, false)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := AppendMessage(nil, MsgProtection, tok)
			return msg
		}
	}
	nec := func(lvl Level) func(*testing.T, *gssapi.Context) []byte {
		return func(*testing.T, *gssapi.Context) []byte {
			msg, _ := AppendMessage(nil, MsgProtection, []byte{byte(lvl)})
			return msg
		}
	}
	for _, c := range []struct {
		name    string
		choose  LevelChooser
		send    func(*testing.T, *gssapi.Context) []byte // the client's bytes, then half-close
		wantErr error
		want    []byte // what the client reads before EOF
	}{
		{"chooser refuses", refuse, wrapped(LevelConfidentiality), ErrLevelRefused, []byte{1, 0xff}},
		{"chooser refuses the NEC form", refuse, nec(LevelIntegrity), ErrLevelRefused, []byte{1, 0xff}},
		{"selective never allowed", noSelective, wrapped(LevelSelective), ErrLevelRefused, []byte{1, 0xff}},
		{"tampered level token", noSelective, func(t *testing.T, ctx *gssapi.Context) []byte {
			msg := wrapped(LevelIntegrity)(t, ctx)
			msg[len(msg)-1] ^= 1
			return msg
		}, gssapi.ErrBadIntegrity, []byte{1, 0xff}},
		{"sealed level token", noSelective, func(t *testing.T, ctx *gssapi.Context) []byte {
			tok, _ := ctx.Wrap(nil, []byte{byte(LevelIntegrity)}, true)
			msg, _ := AppendMessage(nil, MsgProtection, tok)
			return msg
		}, ErrLevelRefused, []byte{1, 0xff}},
		{"authentication message instead", noSelective, func(*testing.T, *gssapi.Context) []byte {
			msg, _ := AppendMessage(nil, MsgAuth, []byte{1})
			return msg
		}, ErrUnexpectedType, []byte{1, 0xff}},
		{"client aborts", noSelective, func(*testing.T, *gssapi.Context) []byte { return []byte{1, 0xff} }, ErrAborted, []byte{}},
		{"client leaves", noSelective, func(*testing.T, *gssapi.Context) []byte { return nil }, io.EOF, []byte{}},
		{"client leaves mid-message", noSelective, func(*testing.T, *gssapi.Context) []byte { return []byte{1, 2, 0, 9, 0} }, io.ErrUnexpectedEOF, []byte{}},
		{"granted", noSelective, wrapped(LevelIntegrity), nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc, sc, cli, srv := establish(t)
			done := make(chan error, 1)
			go func() {
				_, err := NegotiateServer(sc, srv, c.choose)
				sc.Close() // as the server does, whatever the outcome
				done <- err
			}()
			cc.Write(c.send(t, cli))
			cc.CloseWrite()
			got, err := io.ReadAll(cc)
			if err != nil {
				t.Fatal(err)
			}
			serr := <-done
			if c.wantErr == nil {
				if serr != nil {
					t.Fatalf("server: %v", serr)
				}
				if mtyp, _, err := ReadMessage(bytes.NewReader(got), nil); err != nil || mtyp != MsgProtection {
					t.Fatalf("answer %x: %v", got, err)
				}
				return
			}
			if !errors.Is(serr, c.wantErr) {
				t.Fatalf("server: %v, want %v", serr, c.wantErr)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("client read %x before EOF, want %x", got, c.want)
			}
		})
	}
}

// TestNegotiateClientReadsAbort: the real client side of a refused level
// gets ErrAborted, not a silent close.
func TestNegotiateClientReadsAbort(t *testing.T) {
	for _, nec := range []bool{false, true} {
		cc, sc, cli, srv := establish(t)
		go func() {
			NegotiateServer(sc, srv, func(Level, bool) (Level, error) { return 0, ErrLevelRefused })
			sc.Close()
		}()
		if _, err := NegotiateClient(cc, cli, LevelConfidentiality, nec); !errors.Is(err, ErrAborted) {
			t.Fatalf("nec=%t: client got %v, want ErrAborted", nec, err)
		}
	}
}

// FuzzNegotiateServer feeds arbitrary client bytes to the server side of
// the subnegotiation: it never panics, and it either answers with one
// protection-level message or refuses with the abort message alone (or
// nothing, when the client aborted or its stream ended).
func FuzzNegotiateServer(f *testing.F) {
	ini, acc := realm.Get(f).Pair(f, "alice", "")
	tok, _ := ini.Wrap(nil, []byte{byte(LevelIntegrity)}, false)
	msg, _ := AppendMessage(nil, MsgProtection, tok)
	f.Add(msg)
	f.Add([]byte{1, 2, 0, 1, 2})
	f.Add([]byte{1, 2, 0, 1, 3})
	f.Add([]byte{1, 0xff})
	f.Add([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{1, 2, 0, 9, 0})
	choose := func(l Level, _ bool) (Level, error) {
		if l > LevelConfidentiality {
			return 0, ErrLevelRefused
		}
		return l, nil
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		_, err := NegotiateServer(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), &out}, acc, choose)
		got := out.Bytes()
		if err == nil {
			if mtyp, _, rerr := ReadMessage(bytes.NewReader(got), nil); rerr != nil || mtyp != MsgProtection {
				t.Fatalf("answer %x: %v", got, rerr)
			}
			return
		}
		if len(got) != 0 && !bytes.Equal(got, []byte{1, 0xff}) {
			t.Fatalf("refusal %v wrote %x", err, got)
		}
	})
}
