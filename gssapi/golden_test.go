package gssapi

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv/golden"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// goldenSession is what the keytab recovers from one captured handshake:
// both ends of the real MIT context, rebuilt with our code.
type goldenSession struct {
	acc, ini *Context
	ctime    time.Time
	enctype  int32
}

func goldenKeytab(tb testing.TB) *keytab.Keytab {
	tb.Helper()
	kt, err := ParseKeytab(golden.Keytab())
	if err != nil {
		tb.Fatal(err)
	}
	return kt
}

// decodeGoldenAPReq opens a captured AP-REQ with the service keytab: the
// ticket's decrypted part (session key) and the authenticator (subkey,
// sequence number, time).
func decodeGoldenAPReq(tb testing.TB, kt *keytab.Keytab, tok []byte) (messages.APReq, messages.EncTicketPart, types.Authenticator) {
	tb.Helper()
	_, body, err := parseInitialToken(tok)
	if err != nil {
		tb.Fatal(err)
	}
	var req messages.APReq
	if err := req.Unmarshal(body); err != nil {
		tb.Fatal(err)
	}
	if err := req.Ticket.DecryptEncPart(kt, nil); err != nil {
		tb.Fatal(err)
	}
	etp := req.Ticket.DecryptedEncPart
	plain, err := decrypt(req.EncryptedAuthenticator, etp.Key, keyusage.AP_REQ_AUTHENTICATOR, "authenticator")
	if err != nil {
		tb.Fatal(err)
	}
	var auth types.Authenticator
	if err := auth.Unmarshal(plain); err != nil {
		tb.Fatal(err)
	}
	return req, etp, auth
}

// recoverGoldenSession decrypts the captured AP-REQ with the service keytab,
// then completes the initiator side with our AP-REP verification on the
// captured (MIT-made) AP-REP. The acceptor side is built from the same keys.
func recoverGoldenSession(t *testing.T, kt *keytab.Keytab, apReqTok, apRepTok []byte) (*goldenSession, error) {
	t.Helper()
	req, etp, auth := decodeGoldenAPReq(t, kt, apReqTok)
	ctime := auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)

	// Our acceptor must accept the real AP-REQ (at the time it was made).
	acceptor, err := NewAcceptor(AcceptorConfig{Keytab: kt, Now: func() time.Time { return ctime.Add(time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	actx, rep, err := acceptor.Accept(apReqTok, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		return nil, err
	}
	if actx.Client().String() != "alice@EXAMPLE.TEST" || len(rep) == 0 {
		t.Fatalf("accepted %v, AP-REP %d bytes", actx.Client(), len(rep))
	}

	// Our initiator, in the state MIT's was in, verifies MIT's AP-REP.
	in := &Initiator{
		cfg:    InitiatorConfig{Client: actx.Client(), Ticket: req.Ticket, SessionKey: etp.Key, Flags: actx.Flags(), Now: time.Now},
		subkey: auth.SubKey,
		seq:    seqFromASN1(auth.SeqNumber),
		ctime:  auth.CTime,
		cusec:  auth.Cusec,
	}
	ini, err := in.Complete(apRepTok)
	if err != nil {
		t.Fatalf("our initiator refuses MIT's AP-REP: %v", err)
	}
	if !ini.AcceptorSubkey() {
		t.Fatal("MIT's AP-REP carried no acceptor subkey")
	}
	// The acceptor end of the same context: MIT's acceptor subkey, the
	// sequence numbers swapped.
	_, repBody, _ := parseInitialToken(apRepTok)
	var ap messages.APRep
	if err := ap.Unmarshal(repBody); err != nil {
		t.Fatal(err)
	}
	part, err := in.verifyAPRepPart(ap)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := newContext(false, part.Subkey.KeyValue, part.Subkey.KeyType, "test", seqFromASN1(part.SequenceNumber), seqFromASN1(auth.SeqNumber))
	if err != nil {
		t.Fatal(err)
	}
	acc.keyFlag = tokFlagAcceptorSubkey
	return &goldenSession{acc: acc, ini: ini, ctime: ctime, enctype: part.Subkey.KeyType}, nil
}

// TestGolden unwraps every MIT token in the captures of ../shared/golden
// (extracted into testenv/golden): protection levels, SOCKS requests and
// replies, the data streams and the UDP datagrams, in capture order.
func TestGolden(t *testing.T) {
	kt := goldenKeytab(t)
	total := 0
	for _, name := range golden.Names() {
		t.Run(name, func(t *testing.T) {
			c, err := golden.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			var last *goldenSession
			for _, s := range c.Streams {
				req, rep := authToken(s.ToServer), authToken(s.ToClient)
				if req == nil {
					continue
				}
				if rep == nil {
					t.Fatalf("stream %s: AP-REQ without AP-REP", s.Client)
				}
				gs, err := recoverGoldenSession(t, kt, req, rep)
				if strings.Contains(name, "rc4") {
					var ue *UnsupportedEnctypeError
					if !errors.As(err, &ue) || ue.Enctype != EnctypeRC4HMAC {
						t.Fatalf("RC4 session key: got %v, want UnsupportedEnctypeError for 23", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("stream %s: our acceptor refuses MIT's AP-REQ: %v", s.Client, err)
				}
				checkEnctype(t, name, gs.enctype)
				total += unwrapAll(t, gs.acc, s.ToServer.Messages, name)
				total += unwrapAll(t, gs.ini, s.ToClient.Messages, name)
				last = gs
			}
			if len(c.Datagrams) > 0 {
				if last == nil {
					t.Fatal("datagrams without a context")
				}
				last.acc.SetDatagramMode()
				last.ini.SetDatagramMode()
				for _, d := range c.Datagrams {
					ctx := last.ini
					if d.ToRelay {
						ctx = last.acc
					}
					p := d.Payload
					if len(p) < 4 || p[0] != 1 || p[1] != 3 || int(p[2])<<8|int(p[3]) != len(p)-4 {
						t.Fatalf("datagram framing %x", p[:min(4, len(p))])
					}
					msg, _, err := ctx.Unwrap(nil, bytes.Clone(p[4:]))
					if err != nil {
						t.Fatalf("datagram to_relay=%t: %v", d.ToRelay, err)
					}
					// RFC 1928 §7 UDP header: RSV RSV FRAG ATYP.
					if len(msg) < 10 || msg[0] != 0 || msg[1] != 0 || msg[2] != 0 {
						t.Fatalf("datagram plaintext %x is no SOCKS UDP header", msg[:min(10, len(msg))])
					}
					total++
				}
			}
		})
	}
	if total < 40 {
		t.Fatalf("only %d MIT tokens unwrapped", total)
	}
	t.Logf("%d MIT tokens unwrapped", total)
}

func authToken(d golden.Direction) []byte {
	for _, m := range d.Messages {
		if m.Mtyp == 1 {
			return m.Token
		}
	}
	return nil
}

func checkEnctype(t *testing.T, name string, got int32) {
	t.Helper()
	want := EnctypeAES256SHA1 // MIT's default
	switch {
	case strings.Contains(name, "aes128-cts-hmac-sha1-96"):
		want = EnctypeAES128SHA1
	case strings.Contains(name, "aes256-cts-hmac-sha384-192"):
		want = EnctypeAES256SHA384
	}
	if got != want {
		t.Fatalf("context enctype %s, want %s", EnctypeName(got), EnctypeName(want))
	}
}

// unwrapAll unwraps the mtyp 2 and 3 tokens of one direction in order and
// checks what they must contain. It returns how many it unwrapped.
func unwrapAll(t *testing.T, ctx *Context, msgs []golden.Message, name string) int {
	t.Helper()
	n := 0
	levelSeen := false
	for i, m := range msgs {
		if m.Mtyp != 2 && m.Mtyp != 3 {
			continue
		}
		if m.Mtyp == 2 && len(m.Token) == 1 {
			levelSeen = true // NEC style: the level in the clear
			continue
		}
		orig := bytes.Clone(m.Token)
		msg, sealed, err := ctx.Unwrap(nil, bytes.Clone(m.Token))
		if err != nil {
			t.Fatalf("message %d (mtyp %d, %d bytes): %v", i, m.Mtyp, len(m.Token), err)
		}
		if m.Mtyp == 2 {
			if len(msg) != 1 || msg[0] > 2 || sealed {
				t.Fatalf("protection level token unwraps to %x (sealed %t)", msg, sealed)
			}
			levelSeen = true
			// Integrity tokens are deterministic: ours must be MIT's, bit
			// for bit, given the same key and sequence number.
			checkSameToken(t, ctx, orig, msg)
		} else {
			if !levelSeen {
				t.Fatal("encapsulated data before the protection level")
			}
			if sealed != strings.Contains(name, "confidentiality") && !strings.Contains(name, "krb5") {
				t.Fatalf("message %d sealed=%t in %s", i, sealed, name)
			}
			if n == 1 && len(msg) > 0 && msg[0] != 5 {
				t.Fatalf("first encapsulated message %x is no SOCKS request/reply", msg[:1])
			}
			if !sealed {
				checkSameToken(t, ctx, orig, msg)
			}
		}
		n++
	}
	return n
}

// checkSameToken wraps msg again with the sequence number of orig, from a
// context with the peer's view of the keys, and compares.
func checkSameToken(t *testing.T, recv *Context, orig, msg []byte) {
	t.Helper()
	seq := uint64(orig[8])<<56 | uint64(orig[9])<<48 | uint64(orig[10])<<40 | uint64(orig[11])<<32 | uint64(orig[12])<<24 | uint64(orig[13])<<16 | uint64(orig[14])<<8 | uint64(orig[15])
	peer, err := newContext(!recv.initiator, recv.key, recv.enctype, "test", seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer.keyFlag = recv.keyFlag
	ours, err := peer.Wrap(nil, msg, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, orig) {
		t.Fatalf("our integrity token differs from MIT's:\n ours %x\n MIT  %x", ours[:min(48, len(ours))], orig[:min(48, len(orig))])
	}
}
