package hostile

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// socks4Rejected: the gateway answers SOCKS4 reply 0x5b ("SOCKS 4": VN 0,
// CD 91, DSTPORT, DSTIP zero) and closes, quickly.
func socks4Rejected() expectation {
	return func(s *Sess, since time.Time) error {
		return expectBytes(s.Conn, since, []byte{0, 0x5b, 0, 0, 0, 0, 0, 0}, Quick)
	}
}

// socks4Connect is a SOCKS4 CONNECT to 127.0.0.1:port with userid.
func socks4Connect(port uint16, userid string) []byte {
	b := []byte{4, 1, 0, 0, 127, 0, 0, 1}
	binary.BigEndian.PutUint16(b[2:], port)
	return append(append(b, userid...), 0)
}

// socks4Cases: SOCKS4 and SOCKS4a clients (issue 12) against a gateway
// that serves SOCKS4 from 127.0.0.1 through a rule without identity for
// the echo service's port. Malformed requests end in a clean close (0x5b
// where the request was complete), a client outside no_auth and a
// denied destination in 0x5b, a silent one at the negotiation timeout;
// the USERID never forges a log line.
func socks4Cases() []Case {
	c := func(name, h string, fin bool, want string, e expectation, log string) Case {
		return Case{Name: "socks4/" + name, Profile: "socks4", Send: h, Want: want, Log: log, Run: attack(atTCP, lit(h), fin, e)}
	}
	hdr := "04010050" + "7f000001"
	hdr4a := "04010050" + "00000001"
	return []Case{
		{Name: "socks4/CONNECT to the echo service (baseline)", Profile: "socks4", Send: "a SOCKS4 CONNECT, 4 KiB", Want: "00 5a, echo",
			Log: "SOCKS4 session allowed", Run: socks4Echo},
		c("VN only, FIN", "04", true, "close", closes(), "bad SOCKS4 request"),
		c("USERID cut short, FIN", hdr+"616263", true, "close", closes(), "USERID truncated"),
		c("USERID without a NUL within 255 bytes", hdr+strings.Repeat("75", 256), false, "00 5b, close", socks4Rejected(), "USERID without a NUL"),
		c("unknown command 3", "04030050"+"7f000001"+"00", false, "00 5b, close", socks4Rejected(), "unknown command"),
		c("4a with an empty domain name", hdr4a+"00"+"00", false, "00 5b, close", socks4Rejected(), "empty SOCKS4a domain name"),
		c("4a domain name without a NUL within 255 bytes", hdr4a+"00"+strings.Repeat("68", 256), false, "00 5b, close", socks4Rejected(), "SOCKS4a domain name without a NUL"),
		c("4a domain name cut short, FIN", hdr4a+"00"+"6563686f", true, "close", closes(), "SOCKS4a domain name truncated"),
		{Name: "socks4/silent after VN", Profile: "socks4", Send: "04, then nothing", Want: "cut at the negotiation timeout",
			Log: "bad SOCKS4 request", Run: func(c *Ctx) error {
				s, err := c.open(atTCP, "")
				if err != nil {
					return err
				}
				defer s.Close()
				start := time.Now()
				if err := s.Write([]byte{4}); err != nil {
					return err
				}
				return ExpectCutAtTimeout(s.Conn, start, nil)
			}},
		{Name: "socks4/forged audit record in the USERID, denied port", Profile: "socks4",
			Send: "CONNECT 127.0.0.1:1, USERID \"x\\n<forged record>\"", Want: "00 5b, close; no forged log line", Log: "denied",
			Run: func(c *Ctx) error {
				from := len(c.G.Log())
				if err := attack(atTCP, lit(hex.EncodeToString(socks4Connect(1, "x\n"+forgedRecord))), false, socks4Rejected())(c); err != nil {
					return err
				}
				time.Sleep(200 * time.Millisecond) // the log line follows the close
				return noForgedLine(c, from)
			}},
		{Name: "socks4/from 127.0.0.2, outside no_auth", Profile: "socks4", Send: "a good SOCKS4 CONNECT from 127.0.0.2",
			Want: "00 5b, close", Log: "not in no_auth sources", Run: func(c *Ctx) error {
				conn, err := c.DialFrom("127.0.0.2")
				if err != nil {
					return err
				}
				s := &Sess{Conn: conn}
				defer s.Close()
				since := time.Now()
				if err := s.Write(socks4Connect(c.W.Echo.Port(), "")); err != nil {
					return err
				}
				return socks4Rejected()(s, since)
			}},
	}
}

// socks4Echo: a good SOCKS4 CONNECT to the echo service gets 0x5a and
// its bytes back.
func socks4Echo(c *Ctx) error {
	s, err := c.open(atTCP, "")
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Write(socks4Connect(c.W.Echo.Port(), "hostile-suite")); err != nil {
		return err
	}
	s.Conn.SetReadDeadline(time.Now().Add(stepTimeout))
	rep := make([]byte, 8)
	if _, err := io.ReadFull(s.Conn, rep); err != nil || rep[0] != 0 || rep[1] != 0x5a {
		return fmt.Errorf("reply %x: %v", rep, err)
	}
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i)
	}
	if err := s.Write(data); err != nil {
		return err
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(s.Conn, got); err != nil || string(got) != string(data) {
		return fmt.Errorf("echo: %v", err)
	}
	return nil
}
