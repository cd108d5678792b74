package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
	"github.com/gssocks/gssocks/testenv/dante"
	"github.com/gssocks/gssocks/testenv/golden"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// oneRule is the example configuration's mixed rule: clear, integrity and
// confidentiality with auth_only. curl >= 8.17 (no GSS sequence flag)
// must get clear from it, socksify (sequence flag) what it asks for.
const oneRule = `
rule "curl-and-socksify" {
  principals   = ["*@EXAMPLE.TEST"]
  destinations = ["127.0.0.0/8"]
  protection   = ["clear", "integrity", "confidentiality"]
  auth_only    = true
}
`

// capturedFlags returns the GSS flags the captured client asked for, as
// the gateway's acceptor reads them: the capture's AP-REQ is accepted
// with the capture's service keytab at the time its authenticator was
// made, and the context's flags (the 0x8003 checksum, RFC 4121 §4.1.1)
// are returned. The flags must agree with the checksum's raw bytes.
func capturedFlags(t *testing.T, c *golden.Capture) gssapi.Flags {
	t.Helper()
	tok := c.Streams[0].ToServer.Messages[0].Token
	kt, err := gssapi.ParseKeytab(golden.Keytab())
	if err != nil {
		t.Fatal(err)
	}
	// RFC 2743 §3.1 framing: [APPLICATION 0] { mech OID, 01 00, AP-REQ }.
	var framed asn1.RawValue
	if _, err := asn1.Unmarshal(tok, &framed); err != nil || framed.Class != asn1.ClassApplication || framed.Tag != 0 {
		t.Fatalf("captured initial token: %v", err)
	}
	var mech asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(framed.Bytes, &mech)
	if err != nil || len(rest) < 2 || rest[0] != 0x01 || rest[1] != 0x00 {
		t.Fatalf("captured initial token: mech %v, %v", mech, err)
	}
	var req messages.APReq
	if err := req.Unmarshal(rest[2:]); err != nil {
		t.Fatal(err)
	}
	if err := req.Ticket.DecryptEncPart(kt, nil); err != nil {
		t.Fatal(err)
	}
	plain, err := crypto.DecryptEncPart(req.EncryptedAuthenticator, req.Ticket.DecryptedEncPart.Key, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		t.Fatal(err)
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	if auth.Cksum.CksumType != 0x8003 || len(auth.Cksum.Checksum) < 24 {
		t.Fatalf("authenticator checksum type %#x, %d bytes", auth.Cksum.CksumType, len(auth.Cksum.Checksum))
	}
	raw := gssapi.Flags(binary.LittleEndian.Uint32(auth.Cksum.Checksum[20:24]))
	ctime := auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)
	acc, err := gssapi.NewAcceptor(gssapi.AcceptorConfig{Keytab: kt, Now: func() time.Time { return ctime.Add(time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, _, err := acc.Accept(tok, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatalf("the captured AP-REQ at its own time: %v", err)
	}
	const known = gssapi.FlagMutual | gssapi.FlagReplay | gssapi.FlagSequence | gssapi.FlagConf | gssapi.FlagInteg
	if ctx.Flags()&known != raw&known {
		t.Fatalf("acceptor flags %s, checksum flags %s", ctx.Flags(), raw)
	}
	return ctx.Flags()
}

// TestOneRuleCurlAndSocksify replays both clients' exchanges, in the
// shapes of the captures (curl-8.21.0-conf, dante-confidentiality) and
// with the GSS flags their AP-REQs carried, against one auth_only rule
// accepting every level: curl asks confidentiality, gets clear and its
// raw request is served; socksify asks confidentiality and gets it.
func TestOneRuleCurlAndSocksify(t *testing.T) {
	g := startGateway(t, oneRule)
	echo := echoServer(t)
	dest, err := socks5.ParseHostPort(echo)
	if err != nil {
		t.Fatal(err)
	}

	curl, err := golden.Load("curl-8.21.0-conf")
	if err != nil {
		t.Fatal(err)
	}
	dn, err := golden.Load("dante-confidentiality")
	if err != nil {
		t.Fatal(err)
	}
	curlFlags, danteFlags := capturedFlags(t, curl), capturedFlags(t, dn)
	t.Logf("captured flags: curl %s, socksify %s", curlFlags, danteFlags)
	// What the heuristic rests on (protocol-notes §5).
	if curlFlags&gssapi.FlagSequence != 0 || curlFlags&gssapi.FlagConf == 0 {
		t.Fatalf("curl 8.21's captured flags %s: want conf without sequence", curlFlags)
	}
	if danteFlags&gssapi.FlagSequence == 0 {
		t.Fatalf("socksify's captured flags %s: want sequence", danteFlags)
	}

	t.Run("curl 8.21: asks confidentiality, gets clear, raw request served", func(t *testing.T) {
		cs := curl.Streams[0]
		// The captured shape: methods 00 and 01, level 2 asked in the
		// wrapped form, then an unencapsulated CONNECT.
		if !bytes.Equal(cs.ToServer.Greeting, []byte{5, 2, 0, 1}) || len(cs.ToServer.Messages) != 2 ||
			cs.ToServer.Messages[1].Mtyp != golden.MtypProtection || !bytes.HasPrefix(cs.ToServer.Raw, []byte{5, 1, 0}) {
			t.Fatalf("curl capture shape changed: greeting % x, %d messages, raw % x", cs.ToServer.Greeting, len(cs.ToServer.Messages), cs.ToServer.Raw)
		}
		mark := g.mark()
		c, lvl := handshake(t, g, cs.ToServer.Greeting, curlFlags, encap.LevelConfidentiality)
		defer c.Close()
		if lvl != encap.LevelClear {
			t.Fatalf("granted %s to curl's shape, want clear", lvl)
		}
		// curl sends its request raw whatever was granted.
		req, err := socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if rep, _, err := socks5.ReadReply(c); err != nil || rep != socks5.ReplySucceeded {
			t.Fatalf("reply %v, %v", rep, err)
		}
		roundTrip(t, c, 5000)
		c.Close()
		g.waitRecordFrom(t, mark, "curl's session at clear", func(r audit.Record) bool {
			return r.Level == "clear" && r.Rule == "curl-and-socksify" && r.Destination == echo && r.Reply == 0
		})
		waitLogLine(t, g, "lack sequence", "flags=mutual|replay|conf|integ", "requested=confidentiality", `decision="clear: auth_only, no sequence flag"`)
	})

	t.Run("socksify: asks confidentiality, gets it", func(t *testing.T) {
		ds := dn.Streams[0]
		if !bytes.Equal(ds.ToServer.Greeting, []byte{5, 1, 1}) || len(ds.ToServer.Messages) < 3 || ds.ToServer.Messages[2].Mtyp != golden.MtypEncap {
			t.Fatalf("dante capture shape changed: greeting % x, %d messages", ds.ToServer.Greeting, len(ds.ToServer.Messages))
		}
		mark := g.mark()
		c, lvl := handshake(t, g, ds.ToServer.Greeting, danteFlags, encap.LevelConfidentiality)
		defer c.Close()
		if lvl != encap.LevelConfidentiality {
			t.Fatalf("granted %s to socksify's shape, want confidentiality", lvl)
		}
		enc := c.(*encap.Conn)
		req, err := socks5.AppendRequest(nil, socks5.Request{Command: socks5.CmdConnect, Dest: dest})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Write(req); err != nil {
			t.Fatal(err)
		}
		if rep, _, err := socks5.ReadReply(enc); err != nil || rep != socks5.ReplySucceeded {
			t.Fatalf("reply %v, %v", rep, err)
		}
		roundTrip(t, enc, 5000)
		enc.Close()
		g.waitRecordFrom(t, mark, "socksify's session at confidentiality", func(r audit.Record) bool {
			return r.Level == "confidentiality" && r.Rule == "curl-and-socksify" && r.Destination == echo && r.Reply == 0
		})
	})

	t.Run("Go client: asks confidentiality, gets it", func(t *testing.T) {
		s, err := client.Open(context.Background(), g.Addr, g.config("alice", encap.LevelConfidentiality))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Level != encap.LevelConfidentiality {
			t.Fatalf("granted %s", s.Level)
		}
		if _, err := s.Request(socks5.CmdConnect, dest); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s.Stream(), 5000)
	})
}

// handshake runs the greeting, the GSS-API exchange with a fresh AP-REQ
// for alice carrying flags, and the wrapped level request, and returns
// the connection (an *encap.Conn above clear) and the granted level.
func handshake(t *testing.T, g *gateway, greeting []byte, flags gssapi.Flags, want encap.Level) (net.Conn, encap.Level) {
	t.Helper()
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(greeting); err != nil {
		t.Fatal(err)
	}
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil || sel[1] != byte(socks5.MethodGSSAPI) {
		t.Fatalf("method selection % x, %v", sel, err)
	}
	cfg, err := g.env.InitiatorConfig("alice", "rcmd/localhost", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Flags = flags
	in, tok, err := gssapi.NewInitiator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := encap.InitiateContext(c, in, tok)
	if err != nil {
		t.Fatal(err)
	}
	lvl, err := encap.NegotiateClient(c, ctx, want, false)
	if err != nil {
		t.Fatal(err)
	}
	if lvl == encap.LevelClear {
		return c, lvl
	}
	enc, err := encap.NewConn(c, ctx, lvl, encap.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return enc, lvl
}

// TestSocksifyOneRule: live Dante socksify at confidentiality and
// integrity against the same auth_only rule that answers curl clear: it
// gets the level it asked (its context has the sequence flag).
func TestSocksifyOneRule(t *testing.T) {
	dn := dante.Require(t)
	requireCurl(t)
	g := startGateway(t, oneRule)
	web := payloadServer(t)
	for _, level := range []string{"confidentiality", "integrity"} {
		t.Run(level, func(t *testing.T) {
			mark := g.mark()
			got, err := socksifyCurl(t, dn, g, "aes256-cts-hmac-sha1-96", level, false, fmt.Sprintf("http://%s/%d", web, 100000))
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(payload(100000)); got != hex.EncodeToString(want[:]) {
				t.Fatal("body differs")
			}
			g.waitRecordFrom(t, mark, "socksify at "+level, func(r audit.Record) bool {
				return r.Level == level && r.Rule == "curl-and-socksify" && r.Reply == 0 && r.Principal == "alice@EXAMPLE.TEST"
			})
		})
	}
}
