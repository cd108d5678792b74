package server_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv/mitpeer"
)

// TestSPNEGOGateway: MIT's library as a SPNEGO initiator (RFC 4178: the
// first RFC 1961 token is a NegTokenInit carrying the krb5 AP-REQ)
// authenticates to a live gateway, finishes its context on the gateway's
// NegTokenResp, then negotiates the level, CONNECTs and echoes, every
// message wrapped and unwrapped by MIT, at integrity and confidentiality.
func TestSPNEGOGateway(t *testing.T) {
	bin := mitpeer.Require(t)
	g := startGateway(t, `
rule "spnego" {
  principals   = ["alice@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["integrity", "confidentiality"]
}`)
	echo := echoServer(t)
	dest, err := socks5.ParseHostPort(echo)
	if err != nil {
		t.Fatal(err)
	}
	r := g.env.Realm
	cc, err := r.Kinit("alice", krbtest.Users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []encap.Level{encap.LevelIntegrity, encap.LevelConfidentiality} {
		t.Run(level.String(), func(t *testing.T) {
			mark := g.mark()
			mit, tok, err := mitpeer.StartInitiator(bin, r.Env("", cc), "rcmd@localhost", "--spnego")
			if err != nil {
				t.Fatal(err)
			}
			defer mit.Close()
			// A NegTokenInit: [APPLICATION 0] with the SPNEGO OID
			// 1.3.6.1.5.5.2, not the krb5 one.
			if !bytes.Contains(tok[:min(len(tok), 16)], []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}) {
				t.Fatalf("MIT's first token is not SPNEGO: % x", tok[:min(len(tok), 16)])
			}
			c := dialGSS(t, g)
			if err := encap.WriteMessage(c, encap.MsgAuth, tok); err != nil {
				t.Fatal(err)
			}
			rep := readMsg(t, c, encap.MsgAuth)
			if _, err := mit.Step(rep); err != nil {
				t.Fatalf("MIT refuses the gateway's NegTokenResp: %v", err)
			}
			if !mit.Ready() {
				t.Fatal("MIT's SPNEGO context is not established after the gateway's answer")
			}

			// RFC 1961 §4: the level, wrapped without confidentiality.
			lt, err := mit.Wrap(false, []byte{byte(level)})
			if err != nil {
				t.Fatal(err)
			}
			if err := encap.WriteMessage(c, encap.MsgProtection, lt); err != nil {
				t.Fatal(err)
			}
			got, _, err := mit.Unwrap(readMsg(t, c, encap.MsgProtection))
			if err != nil || !bytes.Equal(got, []byte{byte(level)}) {
				t.Fatalf("granted %x, %v; want %s", got, err, level)
			}

			conf := level == encap.LevelConfidentiality
			send := func(b []byte) {
				t.Helper()
				w, err := mit.Wrap(conf, b)
				if err != nil {
					t.Fatal(err)
				}
				if err := encap.WriteMessage(c, encap.MsgEncapsulated, w); err != nil {
					t.Fatal(err)
				}
			}
			recv := func() []byte {
				t.Helper()
				b, wasConf, err := mit.Unwrap(readMsg(t, c, encap.MsgEncapsulated))
				if err != nil {
					t.Fatalf("MIT refuses the gateway's token: %v", err)
				}
				if wasConf != conf {
					t.Fatalf("gateway's token encrypted %t at %s", wasConf, level)
				}
				return b
			}
			req, err := socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})
			if err != nil {
				t.Fatal(err)
			}
			send(req)
			if rep, _, err := socks5.ReadReply(bytes.NewReader(recv())); err != nil || rep != socks5.ReplySucceeded {
				t.Fatalf("reply %v, %v", rep, err)
			}
			data := make([]byte, 3000)
			rand.Read(data)
			send(data)
			var back []byte
			for len(back) < len(data) {
				back = append(back, recv()...)
			}
			if !bytes.Equal(back, data) {
				t.Fatal("echo differs")
			}
			c.Close()
			g.waitRecordFrom(t, mark, "SPNEGO session at "+level.String(), func(r audit.Record) bool {
				return r.Principal == "alice@EXAMPLE.TEST" && r.Level == level.String() && r.Rule == "spnego" &&
					r.Destination == echo && r.Reply == 0 && r.BytesUp == int64(len(data))
			})
		})
	}

	t.Run("NTLM only: 01 ff", func(t *testing.T) {
		mark := g.mark()
		ntlm := []byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a}
		mechToken := []byte("NTLMSSP\x00\x01\x00\x00\x00")
		tlv := func(tag byte, b ...byte) []byte { return append([]byte{tag, byte(len(b))}, b...) }
		seq := append(tlv(0xa0, tlv(0x30, ntlm...)...), tlv(0xa2, tlv(0x04, mechToken...)...)...)
		spnego := []byte{0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}
		tok := tlv(0x60, append(spnego, tlv(0xa0, tlv(0x30, seq...)...)...)...)
		c := dialGSS(t, g)
		if err := encap.WriteMessage(c, encap.MsgAuth, tok); err != nil {
			t.Fatal(err)
		}
		answer, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(answer) != "\x01\xff" {
			t.Fatalf("gateway answered % x, want the abort 01 ff", answer)
		}
		g.waitRecordFrom(t, mark, "NTLM-only refused", func(r audit.Record) bool {
			return r.EndReason == audit.EndAuthFailed
		})
		waitLogLine(t, g, "authentication failed", "offers NTLM and no Kerberos V5")
	})
}

// dialGSS connects to the gateway and selects method 01 (GSS-API).
func dialGSS(t *testing.T, g *gateway) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte{5, 1, byte(socks5.MethodGSSAPI)}); err != nil {
		t.Fatal(err)
	}
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil || sel[1] != byte(socks5.MethodGSSAPI) {
		t.Fatalf("method selection % x, %v", sel, err)
	}
	return c
}

// readMsg reads one RFC 1961 message of type want.
func readMsg(t *testing.T, c net.Conn, want encap.MsgType) []byte {
	t.Helper()
	mt, tok, err := encap.ReadMessage(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mt != want {
		t.Fatalf("message type %d, want %d", mt, want)
	}
	return tok
}
