package hostile

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/socks5"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// step is how far a good client goes before the attack.
type step int

const (
	atTCP       step = iota // connected
	atGreeted               // greeting offered GSS-API, selected
	atAuthed                // GSS-API context established (alice)
	atLeveled               // confidentiality negotiated
	atConnected             // CONNECT to the echo service succeeded
)

// open brings a client of who to the step.
func (c *Ctx) open(at step, who string) (*Sess, error) {
	switch at {
	case atTCP:
		conn, err := c.Dial()
		if err != nil {
			return nil, err
		}
		return &Sess{Conn: conn}, nil
	case atGreeted:
		return c.Greeted()
	case atAuthed:
		return c.Authed(who)
	case atLeveled:
		return c.Leveled(who, encap.LevelConfidentiality)
	default:
		return c.Connected(who, c.W.Echo.String())
	}
}

// expectation checks the gateway's answer to what was sent at since.
type expectation func(s *Sess, since time.Time) error

func closes() expectation {
	return func(s *Sess, since time.Time) error { return ExpectClose(s.Conn, since) }
}

func aborts() expectation {
	return func(s *Sess, since time.Time) error { return ExpectAbort(s.Conn, since) }
}

func refusesMethod() expectation {
	return func(s *Sess, since time.Time) error { return ExpectMethod(s.Conn, since, socks5.MethodNoAcceptable) }
}

func replies(rep socks5.Reply) expectation {
	return func(s *Sess, since time.Time) error { return ExpectReply(s, since, rep) }
}

// attack: a client of alice goes to step at, sends what build makes,
// half-closes if fin, and expect judges the answer.
func attack(at step, build func(c *Ctx, s *Sess) ([]byte, error), fin bool, expect expectation) func(*Ctx) error {
	return func(c *Ctx) error {
		s, err := c.open(at, "alice")
		if err != nil {
			return err
		}
		defer s.Close()
		b, err := build(c, s)
		if err != nil {
			return setupf("build the attack: %w", err)
		}
		if err := s.Write(b); err != nil {
			return fmt.Errorf("the gateway refused the bytes before they were all sent: %w", err)
		}
		if fin {
			s.Conn.(*net.TCPConn).CloseWrite()
		}
		return expect(s, time.Now())
	}
}

// lit is a fixed byte string in hex (spaces allowed).
func lit(h string) func(*Ctx, *Sess) ([]byte, error) {
	return func(*Ctx, *Sess) ([]byte, error) { return hex.DecodeString(strings.ReplaceAll(h, " ", "")) }
}

// msg frames token as an RFC 1961 message with version ver and type mtyp.
func msg(ver, mtyp byte, token []byte) []byte {
	return append([]byte{ver, mtyp, byte(len(token) >> 8), byte(len(token))}, token...)
}

// withAPReq builds from a fresh AP-REQ of alice.
func withAPReq(f func(tok []byte) ([]byte, error)) func(*Ctx, *Sess) ([]byte, error) {
	return func(c *Ctx, s *Sess) ([]byte, error) {
		_, tok, err := gssapi.NewInitiator(c.W.ticket("alice"))
		if err != nil {
			return nil, err
		}
		return f(tok)
	}
}

// levelToken wraps the level octets the RFC 1961 §4 way (integrity, not
// sealed) unless sealed.
func levelToken(octets []byte, sealed bool) func(*Ctx, *Sess) ([]byte, error) {
	return func(c *Ctx, s *Sess) ([]byte, error) {
		tok, err := s.Ctx.Wrap(nil, octets, sealed)
		return msg(1, 2, tok), err
	}
}

// request is a SOCKS request's wire bytes with a raw address part.
func request(cmd byte, addr ...[]byte) []byte {
	return append([]byte{0x05, cmd, 0x00}, bytes.Join(addr, nil)...)
}

func ip4(a [4]byte, port uint16) []byte {
	return binary.BigEndian.AppendUint16(append([]byte{0x01}, a[:]...), port)
}

func ip6(s string, port uint16) []byte {
	a := netip.MustParseAddr(s).As16()
	return binary.BigEndian.AppendUint16(append([]byte{0x04}, a[:]...), port)
}

func domain(name string, port uint16) []byte {
	return binary.BigEndian.AppendUint16(append([]byte{0x03, byte(len(name))}, name...), port)
}

// framed wraps plain as one MTYP 3 message of the session.
func framed(plain []byte) func(*Ctx, *Sess) ([]byte, error) {
	return func(c *Ctx, s *Sess) ([]byte, error) { return s.Frame(plain), nil }
}

func flip(b []byte, i int) []byte {
	b = append([]byte{}, b...)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	return b
}

// forgedRecord is a fake log record a client tries to smuggle in behind a
// newline.
const forgedRecord = "2030-01-01T00:00:00.000Z [INFO]  gssocks.audit: session: principal=forged@EXAMPLE.TEST reply=00"

// noForgedLine: the forged record never starts a line of the gateway's
// log since from, even behind a continuation prefix ("  | " of a
// multi-line value): only escaped, after a literal \n on the line it
// came in on.
func noForgedLine(c *Ctx, from int) error {
	stamp := forgedRecord[:24]
	for _, l := range strings.Split(c.G.Log()[from:], "\n") {
		if i := strings.Index(l, stamp); i >= 0 && !strings.HasSuffix(l[:i], `\n`) {
			return fmt.Errorf("the log holds a forged line: %q", l)
		}
	}
	return nil
}

// Cases is the suite, in the order it runs.
func Cases() []Case {
	var cs []Case
	cs = append(cs, greetingCases()...)
	cs = append(cs, authCases()...)
	cs = append(cs, levelCases()...)
	cs = append(cs, requestCases()...)
	cs = append(cs, dataCases()...)
	cs = append(cs, udpCases()...)
	cs = append(cs, slowCases()...)
	cs = append(cs, destinationCases()...)
	cs = append(cs, issue8Cases()...)
	cs = append(cs, socks4Cases()...)
	for i := range cs {
		if cs[i].Profile == "" {
			cs[i].Profile = "base"
		}
	}
	return cs
}

func greetingCases() []Case {
	c := func(name, h string, fin bool, want string, e expectation, log string) Case {
		return Case{Name: "greeting/" + name, Send: h, Want: want, Log: log, Run: attack(atTCP, lit(h), fin, e)}
	}
	methods255 := "05ff" + strings.Repeat("80", 255)
	return []Case{
		c("VER only, FIN", "05", true, "close", closes(), "greeting"),
		c("NMETHODS without methods, FIN", "0501", true, "close", closes(), "greeting"),
		c("2 methods announced, 1 sent, FIN", "050201", true, "close", closes(), "greeting"),
		c("NMETHODS 0", "0500", false, "close", closes(), "greeting"),
		c("SOCKS version 4 (not enabled)", "040100507f00000100", false, "00 5b, close", socks4Rejected(), "SOCKS4 is not enabled"),
		c("HTTP request", hex.EncodeToString([]byte("GET / HTTP/1.1\r\n\r\n")), false, "close", closes(), "greeting"),
		c("only method 00 (no auth not allowed)", "050100", false, "05 ff, close", refusesMethod(), "no acceptable"),
		c("255 unknown methods", methods255, false, "05 ff, close", refusesMethod(), "no acceptable"),
	}
}

func authCases() []Case {
	c := func(name, send, want string, b func(*Ctx, *Sess) ([]byte, error), fin bool, e expectation, log string) Case {
		return Case{Name: "auth/" + name, Send: send, Want: want, Log: log, Run: attack(atGreeted, b, fin, e)}
	}
	apReq := func(f func(tok []byte) []byte) func(*Ctx, *Sess) ([]byte, error) {
		return withAPReq(func(tok []byte) ([]byte, error) { return f(tok), nil })
	}
	edited := func(edit func(*messages.APReq)) func(*Ctx, *Sess) ([]byte, error) {
		return withAPReq(func(tok []byte) ([]byte, error) {
			t, err := rewriteAPReq(tok, edit)
			return msg(1, 1, t), err
		})
	}
	const fail = "authentication failed|authentication"
	junk := make([]byte, 64)
	rand.Read(junk)
	cases := []Case{
		c("RFC 1961 header cut after VER, FIN", "01", "close", lit("01"), true, closes(), fail),
		c("header cut after MTYP, FIN", "01 01", "close", lit("0101"), true, closes(), fail),
		c("header cut inside LEN, FIN", "01 01 02", "close", lit("010102"), true, closes(), fail),
		c("AP-REQ cut in the middle, FIN", "01 01 len half-token", "close",
			apReq(func(tok []byte) []byte { m := msg(1, 1, tok); return m[:4+len(tok)/2] }), true, closes(), fail),
		c("65535 claimed, 100 sent, FIN", "01 01 ff ff + 100 bytes", "close",
			func(*Ctx, *Sess) ([]byte, error) { return append([]byte{1, 1, 0xff, 0xff}, make([]byte, 100)...), nil }, true, closes(), fail),
		c("empty token", "01 01 00 00", "01 ff, close", lit("01010000"), false, aborts(), fail),
		c("RFC 1961 version 2", "02 01 len AP-REQ", "01 ff, close", apReq(func(tok []byte) []byte { return msg(2, 1, tok) }), false, aborts(), fail),
		c("MTYP 2 (level) instead of 1", "01 02 len AP-REQ", "01 ff, close", apReq(func(tok []byte) []byte { return msg(1, 2, tok) }), false, aborts(), fail),
		c("MTYP 3 (data) instead of 1", "01 03 len AP-REQ", "01 ff, close", apReq(func(tok []byte) []byte { return msg(1, 3, tok) }), false, aborts(), fail),
		c("unknown MTYP 7", "01 07 len AP-REQ", "01 ff, close", apReq(func(tok []byte) []byte { return msg(1, 7, tok) }), false, aborts(), fail),
		c("level message before the token (reordered)", "01 02 00 01 02", "01 ff, close", lit("0102000102"), false, aborts(), fail),
		c("client abort", "01 ff", "close", lit("01ff"), false, closes(), "abort"),
		c("raw SOCKS request instead of a token", "05 01 00 01 ...", "01 ff, close", lit("050100017f0000010050"), false, aborts(), fail),
		c("random bytes as the token", "01 01 00 40 random", "01 ff, close", func(*Ctx, *Sess) ([]byte, error) { return msg(1, 1, junk), nil }, false, aborts(), fail),
		c("GSS framing around garbage", "60 .. krb5 OID 01 00 random", "01 ff, close", func(*Ctx, *Sess) ([]byte, error) { return msg(1, 1, initialToken(junk)), nil }, false, aborts(), fail),
		c("AP-REQ cut inside a whole message", "01 01 len(half) half-token", "01 ff, close",
			apReq(func(tok []byte) []byte { return msg(1, 1, tok[:len(tok)/2]) }), false, aborts(), fail),
		c("AP-REQ, bit flipped in the ticket's encrypted part", "AP-REQ with ticket cipher ^ 1", "01 ff, close",
			edited(func(r *messages.APReq) { r.Ticket.EncPart.Cipher = flip(r.Ticket.EncPart.Cipher, 20) }), false, aborts(), fail),
		c("AP-REQ, bit flipped in the authenticator", "AP-REQ with authenticator cipher ^ 1", "01 ff, close",
			edited(func(r *messages.APReq) {
				r.EncryptedAuthenticator.Cipher = flip(r.EncryptedAuthenticator.Cipher, -3)
			}), false, aborts(), fail),
		c("AP-REQ, ticket enctype field changed", "AP-REQ with the ticket's etype 18 -> 17", "01 ff, close",
			edited(func(r *messages.APReq) { r.Ticket.EncPart.EType = 17 }), false, aborts(), fail),
		{
			Name: "auth/replayed AP-REQ (second connection)", Send: "alice's AP-REQ again on a new connection", Want: "01 ff, close",
			Log: "replay", Run: replayAs(nil),
		},
		{
			Name: "auth/replayed AP-REQ with the ticket kvno rewritten", Send: "alice's AP-REQ again, ticket kvno 77 (not encrypted)",
			Want: "01 ff, close", Log: "replay|key", Run: replayAs(func(r *messages.APReq) { r.Ticket.EncPart.KVNO = 77 }),
		},
		{
			Name: "auth/ticket sname with a newline and a forged log record", Issue: "8.3",
			Send: "AP-REQ whose ticket names service \"rcmd/x\\n<fake audit record>\"",
			Want: "01 ff or AP-REP (a keytab key opens the ticket, as MIT's acceptor allows); no forged log line",
			Log:  "authenticat", Run: newlineSName(false),
		},
		{
			Name: "auth/ticket sname with a newline, ticket corrupted", Issue: "8.3",
			Send: "AP-REQ whose ticket names service \"rcmd/x\\n<fake audit record>\", ticket cipher ^ 1",
			Want: "01 ff, close; no forged log line", Log: fail, Run: newlineSName(true),
		},
	}
	return cases
}

// replayAs authenticates alice, then sends her AP-REQ again on a new
// connection, edited (its unencrypted parts) if edit is not nil.
func replayAs(edit func(*messages.APReq)) func(*Ctx) error {
	return func(c *Ctx) error {
		s, err := c.Authed("alice")
		if err != nil {
			return err
		}
		s.Close()
		tok := s.APReq
		if edit != nil {
			if tok, err = rewriteAPReq(tok, edit); err != nil {
				return setupf("%w", err)
			}
		}
		s2, err := c.Greeted()
		if err != nil {
			return err
		}
		defer s2.Close()
		if err := s2.Write(msg(1, 1, tok)); err != nil {
			return err
		}
		return ExpectAbort(s2.Conn, time.Now())
	}
}

// newlineSName sends an AP-REQ whose (unencrypted) ticket sname carries
// a newline and a forged log record, the ticket corrupted or not, and
// checks the log once the session has ended.
func newlineSName(corrupt bool) func(*Ctx) error {
	return func(c *Ctx) error {
		from := len(c.G.Log())
		s, err := c.Greeted()
		if err != nil {
			return err
		}
		defer s.Close()
		_, tok, err := gssapi.NewInitiator(c.W.ticket("alice"))
		if err != nil {
			return setupf("%w", err)
		}
		tok, err = rewriteAPReq(tok, func(r *messages.APReq) {
			r.Ticket.SName.NameString = []string{"rcmd", "x\n" + forgedRecord}
			if corrupt {
				r.Ticket.EncPart.Cipher = flip(r.Ticket.EncPart.Cipher, 20)
			}
		})
		if err != nil {
			return setupf("%w", err)
		}
		if err := s.Write(msg(1, 1, tok)); err != nil {
			return err
		}
		since := time.Now()
		if corrupt {
			if err := ExpectAbort(s.Conn, since); err != nil {
				return err
			}
		} else {
			// Either answer will do: the abort, or an AP-REP (01 01 ...).
			got, _, _ := readOutcome(s.Conn, since.Add(Quick), []byte{1, 0xff})
			if len(got) < 2 || got[0] != 1 || (got[1] != 0xff && got[1] != 1) {
				return fmt.Errorf("gateway sent %x, want 01 ff or 01 01 (AP-REP)", trim(got))
			}
		}
		s.Close()
		time.Sleep(300 * time.Millisecond) // the session's last records
		c.G.WaitLog(logAny, from, time.Second)
		return noForgedLine(c, from)
	}
}

// logAny is any line a refused session logs.
var logAny = regexp.MustCompile(`(?i)authentication|denied|session`)

func levelCases() []Case {
	c := func(name, send, want, issue string, b func(*Ctx, *Sess) ([]byte, error), fin bool, e expectation, log string) Case {
		return Case{Name: "level/" + name, Issue: issue, Send: send, Want: want, Log: log, Run: attack(atAuthed, b, fin, e)}
	}
	const fail = "protection|level"
	wrapped := func(f func(tok []byte) []byte) func(*Ctx, *Sess) ([]byte, error) {
		return func(c *Ctx, s *Sess) ([]byte, error) {
			tok, err := s.Ctx.Wrap(nil, []byte{2}, false)
			return f(tok), err
		}
	}
	return []Case{
		c("header cut after VER, FIN", "01", "close", "", lit("01"), true, closes(), fail),
		c("level token cut, FIN", "01 02 len half-token", "close", "",
			wrapped(func(tok []byte) []byte { m := msg(1, 2, tok); return m[:4+len(tok)/2] }), true, closes(), fail),
		c("selective (level 3) asked", "01 02 len Wrap(03)", "01 ff, close", "8.5", levelToken([]byte{3}, false), false, aborts(), fail),
		c("unknown level 7 asked", "01 02 len Wrap(07)", "01 ff, close", "8.5", levelToken([]byte{7}, false), false, aborts(), fail),
		c("NEC form where not allowed", "01 02 00 01 02", "01 ff, close", "8.5", lit("0102000102"), false, aborts(), fail),
		c("two level octets", "01 02 len Wrap(02 02)", "01 ff, close", "", levelToken([]byte{2, 2}, false), false, aborts(), fail),
		c("level sealed instead of integrity-only", "01 02 len Wrap_conf(02)", "01 ff, close", "", levelToken([]byte{2}, true), false, aborts(), fail),
		c("level token with a bit flipped", "01 02 len Wrap(02)^1", "01 ff, close", "",
			wrapped(func(tok []byte) []byte { return msg(1, 2, flip(tok, -1)) }), false, aborts(), fail),
		c("MTYP 1 instead of 2", "01 01 len Wrap(02)", "01 ff, close", "",
			wrapped(func(tok []byte) []byte { return msg(1, 1, tok) }), false, aborts(), fail),
		c("RFC 1961 version 2", "02 02 len Wrap(02)", "01 ff, close", "",
			wrapped(func(tok []byte) []byte { return msg(2, 2, tok) }), false, aborts(), fail),
		c("SOCKS request before the level (reordered)", "01 03 len Wrap(request)", "01 ff, close", "",
			func(c *Ctx, s *Sess) ([]byte, error) {
				tok, err := s.Ctx.Wrap(nil, request(1, ip4([4]byte{127, 0, 0, 1}, c.W.Echo.Port())), true)
				return msg(1, 3, tok), err
			}, false, aborts(), fail),
	}
}

func requestCases() []Case {
	c := func(name, send, want, issue string, b func(*Ctx, *Sess) ([]byte, error), fin bool, e expectation, log string) Case {
		return Case{Name: "request/" + name, Issue: issue, Send: send, Want: want, Log: log, Run: attack(atLeveled, b, fin, e)}
	}
	const bad = "bad request|request"
	echoReq := func(c *Ctx) []byte { return request(1, ip4([4]byte{127, 0, 0, 1}, c.W.Echo.Port())) }
	tok := func(f func(c *Ctx, s *Sess, m []byte) []byte) func(*Ctx, *Sess) ([]byte, error) {
		return func(c *Ctx, s *Sess) ([]byte, error) { return f(c, s, s.Frame(echoReq(c))), nil }
	}
	return []Case{
		c("MTYP 3 header cut, FIN", "01 03", "close", "", lit("0103"), true, closes(), bad),
		c("wrap token cut, FIN", "01 03 len half-token", "close", "",
			tok(func(_ *Ctx, _ *Sess, m []byte) []byte { return m[:len(m)/2] }), true, closes(), bad),
		c("65535 claimed, 100 sent, FIN", "01 03 ff ff + 100 bytes", "close", "",
			func(*Ctx, *Sess) ([]byte, error) { return append([]byte{1, 3, 0xff, 0xff}, make([]byte, 100)...), nil }, true, closes(), bad),
		c("wrap token with a bit flipped", "01 03 len Wrap(request)^1", "close", "",
			tok(func(_ *Ctx, _ *Sess, m []byte) []byte { return flip(m, -5) }), false, closes(), bad),
		c("wrap token with its sequence number changed", "SND_SEQ+1 in the token header", "close", "",
			tok(func(_ *Ctx, _ *Sess, m []byte) []byte { return flip(m, 4+15) }), false, closes(), bad),
		c("integrity-only token at confidentiality", "01 03 len Wrap_integ(request)", "close", "",
			func(c *Ctx, s *Sess) ([]byte, error) {
				t, err := s.Ctx.Wrap(nil, echoReq(c), false)
				return msg(1, 3, t), err
			}, false, closes(), bad),
		c("request split in two tokens sent in reverse order", "Wrap#2(second half) Wrap#1(first half)", "close", "",
			func(c *Ctx, s *Sess) ([]byte, error) {
				r := echoReq(c)
				first, second := s.Frame(r[:4]), s.Frame(r[4:])
				return append(second, first...), nil
			}, false, closes(), bad),
		c("MTYP 2 in the data phase", "01 02 len Wrap(request)", "close", "",
			tok(func(_ *Ctx, _ *Sess, m []byte) []byte { m[1] = 2; return m }), false, closes(), bad),
		c("RFC 1961 version 2", "02 03 len Wrap(request)", "close", "",
			tok(func(_ *Ctx, _ *Sess, m []byte) []byte { m[0] = 2; return m }), false, closes(), bad),
		c("raw SOCKS request at confidentiality", "05 01 00 01 127.0.0.1 port", "close", "",
			func(c *Ctx, _ *Sess) ([]byte, error) { return echoReq(c), nil }, false, closes(), "raw SOCKS|request"),
		c("client abort instead of the request", "01 ff", "close", "", lit("01ff"), false, closes(), "abort|request"),
		c("SOCKS request cut inside a whole token, FIN", "Wrap(05 01 00 01 7f 00)", "close", "",
			framed([]byte{5, 1, 0, 1, 127, 0}), true, closes(), bad),
		c("SOCKS version 4 request", "Wrap(04 01 ...)", "close", "",
			func(c *Ctx, s *Sess) ([]byte, error) { r := echoReq(c); r[0] = 4; return s.Frame(r), nil }, false, closes(), bad),
		c("unknown command 09", "Wrap(05 09 00 01 ...)", "REP 07, close", "",
			func(c *Ctx, s *Sess) ([]byte, error) { r := echoReq(c); r[1] = 9; return s.Frame(r), nil }, false, replies(socks5.ReplyCommandNotSupported), bad),
		c("unknown address type 05", "Wrap(05 01 00 05 ...)", "REP 08, close", "",
			framed([]byte{5, 1, 0, 5, 127, 0, 0, 1, 0, 80}), false, replies(socks5.ReplyAddressTypeNotSupported), bad),
		c("empty domain name", "Wrap(05 01 00 03 00 port)", "REP 04, close", "",
			framed(request(1, domain("", 80))), false, replies(socks5.ReplyHostUnreachable), bad),
		{
			Name: "request/domain name with a newline and a forged log record", Issue: "8.3",
			Send: "Wrap(CONNECT \"x\\n<fake audit record>\":80)", Want: "REP 04, close; no forged log line", Log: bad,
			Run: func(c *Ctx) error {
				from := len(c.G.Log())
				name := "x\n" + forgedRecord
				if err := attack(atLeveled, framed(request(1, domain(name[:min(len(name), 255)], 80))), false, replies(socks5.ReplyHostUnreachable))(c); err != nil {
					return err
				}
				c.G.WaitLog(logAny, from, time.Second)
				return noForgedLine(c, from)
			},
		},
	}
}

func dataCases() []Case {
	// After a CONNECT to the echo service.
	c := func(name, send string, b func(*Ctx, *Sess) ([]byte, error)) Case {
		return Case{Name: "data/" + name, Send: send, Want: "close", Log: "relay|integrity|sequence|token",
			Run: attack(atConnected, b, false, closes())}
	}
	return []Case{
		c("wrap token with a bit flipped", "Wrap(data)^1", func(_ *Ctx, s *Sess) ([]byte, error) { return flip(s.Frame([]byte("hello")), -2), nil }),
		c("replayed token", "Wrap#n(data), echoed, then Wrap#n again", func(_ *Ctx, s *Sess) ([]byte, error) {
			m := s.Frame([]byte("hello"))
			if err := s.Write(m); err != nil {
				return nil, err
			}
			got := make([]byte, 5)
			s.Conn.SetReadDeadline(time.Now().Add(stepTimeout))
			if _, err := s.Stream.Read(got); err != nil || string(got) != "hello" {
				return nil, fmt.Errorf("echo before the replay: %q %v", got, err)
			}
			return m, nil
		}),
		c("tokens reordered", "Wrap#n+1 then Wrap#n", func(_ *Ctx, s *Sess) ([]byte, error) {
			a, b := s.Frame([]byte("first")), s.Frame([]byte("second"))
			return append(b, a...), nil
		}),
		c("MTYP 1 in the data phase", "01 01 len Wrap(data)", func(_ *Ctx, s *Sess) ([]byte, error) {
			m := s.Frame([]byte("hello"))
			m[1] = 1
			return m, nil
		}),
		c("integrity-only token at confidentiality", "Wrap_integ(data)", func(_ *Ctx, s *Sess) ([]byte, error) {
			t, err := s.Ctx.Wrap(nil, []byte("hello"), false)
			return msg(1, 3, t), err
		}),
		c("abort in the data phase", "01 ff", lit("01ff")),
	}
}

// udpCase runs f on a fresh association of alice and then checks that
// the association still relays to the echo.
func udpCase(f func(c *Ctx, a *Association) error) func(*Ctx) error {
	return func(c *Ctx) error {
		a, err := c.Associate("alice")
		if err != nil {
			return err
		}
		defer a.Close()
		if err := a.Echo(c); err != nil {
			return setupf("%w", err)
		}
		if err := f(c, a); err != nil {
			return err
		}
		if err := a.Echo(c); err != nil {
			return fmt.Errorf("after the attack: %w", err)
		}
		return nil
	}
}

// dropped sends pkt from conn (the association's socket if nil) and
// checks that the echo never sees mark and nothing comes back.
func dropped(c *Ctx, a *Association, from *net.UDPConn, pkt []byte, mark string) error {
	if from == nil {
		from = a.UDP
	}
	if _, err := from.WriteToUDPAddrPort(pkt, a.Relay); err != nil {
		return setupf("send: %w", err)
	}
	buf := make([]byte, 65536)
	from.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	if n, src, err := from.ReadFromUDPAddrPort(buf); err == nil {
		return fmt.Errorf("the relay answered %d bytes from %s", n, src)
	}
	if c.W.UDPEcho.Saw(mark) {
		return errors.New("the datagram reached the destination")
	}
	return nil
}

func listenUDP(ip string) (*net.UDPConn, error) {
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		return nil, setupf("%w", err)
	}
	return u, nil
}

func udpCases() []Case {
	echoDest := func(c *Ctx) socks5.Addr { return socks5.AddrFromAddrPort(c.W.UDPEcho.Addr) }
	foreign := func(ip string) func(c *Ctx, a *Association) error {
		return func(c *Ctx, a *Association) error {
			u, err := listenUDP(ip)
			if err != nil {
				return err
			}
			defer u.Close()
			mark := markPrefix + "foreign-" + randHex(4)
			return dropped(c, a, u, a.Datagram(echoDest(c), []byte(mark), nil), mark)
		}
	}
	return []Case{
		{Name: "udp/datagram from a foreign port", Send: "a valid datagram of the association from another port of 127.0.0.1",
			Want: "dropped; association alive", Log: "dropped", Run: udpCase(foreign("127.0.0.1"))},
		{Name: "udp/datagram from a foreign address", Send: "a valid datagram of the association from 127.0.0.2",
			Want: "dropped; association alive", Log: "dropped", Run: udpCase(foreign("127.0.0.2"))},
		{Name: "udp/datagram replayed", Send: "a datagram the relay passed, sent again", Want: "dropped; association alive",
			Log: "dropped", Run: udpCase(func(c *Ctx, a *Association) error {
				mark := markPrefix + "replay-" + randHex(4)
				pkt := a.Datagram(echoDest(c), []byte(mark), nil)
				if err := a.Send(pkt); err != nil {
					return setupf("%w", err)
				}
				if _, data, err := a.Receive(2 * time.Second); err != nil || string(data) != mark {
					return setupf("first copy not echoed: %v", err)
				}
				return dropped(c, a, nil, pkt, "never-marked")
			})},
		{Name: "udp/FRAG not zero", Send: "Wrap(00 00 01 01 127.0.0.1 port data)", Want: "dropped; association alive",
			Log: "dropped", Run: udpCase(func(c *Ctx, a *Association) error {
				mark := markPrefix + "frag-" + randHex(4)
				hdr := append([]byte{0, 0, 1}, ip4([4]byte{127, 0, 0, 1}, c.W.UDPEcho.Addr.Port())...)
				return dropped(c, a, nil, a.Datagram(socks5.Addr{}, []byte(mark), hdr), mark)
			})},
		{Name: "udp/datagram with a bit flipped", Send: "Wrap(datagram)^1", Want: "dropped; association alive",
			Log: "dropped", Run: udpCase(func(c *Ctx, a *Association) error {
				mark := markPrefix + "flip-" + randHex(4)
				return dropped(c, a, nil, flip(a.Datagram(echoDest(c), []byte(mark), nil), -3), mark)
			})},
		{Name: "udp/unwrapped datagram at confidentiality", Send: "00 00 00 01 127.0.0.1 port data, no RFC 1961 framing",
			Want: "dropped; association alive", Log: "dropped", Run: udpCase(func(c *Ctx, a *Association) error {
				mark := markPrefix + "raw-" + randHex(4)
				hdr, _ := socks5.AppendUDPHeader(nil, echoDest(c))
				return dropped(c, a, nil, append(hdr, mark...), mark)
			})},
	}
}

func slowCases() []Case {
	return []Case{
		{
			Name: "slow/slowloris greeting and token, one byte per second", Send: "05 01 01 01 01 ... one byte a second",
			Want: "05 01, then close at the negotiation timeout", Log: "timeout",
			Run: func(c *Ctx) error {
				conn, err := c.Dial()
				if err != nil {
					return err
				}
				defer conn.Close()
				start := time.Now()
				in, tok, err := gssapi.NewInitiator(c.W.ticket("alice"))
				if err != nil || in == nil {
					return setupf("initiator: %v", err)
				}
				data := append([]byte{5, 1, 1}, msg(1, 1, tok)...)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range data {
						if _, err := conn.Write(data[i : i+1]); err != nil {
							return
						}
						select {
						case <-stop:
							return
						case <-time.After(time.Second):
						}
					}
				}()
				defer wg.Wait()
				defer close(stop)
				return ExpectCutAtTimeout(conn, start, []byte{5, 1})
			},
		},
		{
			Name: "slow/silent connection", Send: "nothing", Want: "close at the negotiation timeout", Log: "timeout",
			Run: func(c *Ctx) error {
				conn, err := c.Dial()
				if err != nil {
					return err
				}
				defer conn.Close()
				return ExpectCutAtTimeout(conn, time.Now(), nil)
			},
		},
		{
			Name: "slow/AP-REQ length 65535 claimed, 100 bytes sent, then silence", Send: "05 01 01, 01 01 ff ff + 100 bytes",
			Want: "close at the negotiation timeout", Log: "timeout",
			Run: func(c *Ctx) error {
				start := time.Now()
				s, err := c.Greeted()
				if err != nil {
					return err
				}
				defer s.Close()
				if err := s.Write(append([]byte{1, 1, 0xff, 0xff}, make([]byte, 100)...)); err != nil {
					return err
				}
				return ExpectCutAtTimeout(s.Conn, start, nil)
			},
		},
		{
			Name: "slow/request length 65535 claimed, 100 bytes sent, then silence", Send: "after the level: 01 03 ff ff + 100 bytes",
			Want: "close at the negotiation timeout", Log: "timeout",
			Run: func(c *Ctx) error {
				start := time.Now()
				s, err := c.Leveled("alice", encap.LevelConfidentiality)
				if err != nil {
					return err
				}
				defer s.Close()
				if err := s.Write(append([]byte{1, 3, 0xff, 0xff}, make([]byte, 100)...)); err != nil {
					return err
				}
				return ExpectCutAtTimeout(s.Conn, start, nil)
			},
		},
	}
}
