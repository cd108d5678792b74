package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
)

// A program on a workstation where the user ran kinit: their ticket
// cache, /etc/krb5.conf (or KRB5_CONFIG), confidentiality, and the
// service principal rcmd/<canonical name of the gateway>.
func ExampleNew() {
	d, err := client.New(client.Options{Gateway: "gw.example.com:1080"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	c, err := d.DialContext(context.Background(), "tcp", "intranet.example.com:443")
	if err != nil {
		log.Fatal(err) // says what to do: run kinit, fix the clock, ...
	}
	defer c.Close()
}

// A long-running service with its own keytab: the Dialer logs in, and
// renews or re-acquires its ticket before it expires.
func ExampleNew_keytab() {
	d, err := client.New(client.Options{
		Gateway:          "gw.example.com:1080",
		ServicePrincipal: "socks", // the gateway is registered as socks/<host>
		Principal:        "svc-backup@EXAMPLE.COM",
		Keytab:           "/etc/backup/client.keytab",
		Level:            encap.LevelIntegrity,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if err := d.Login(context.Background()); err != nil {
		log.Fatal(err) // a credential problem shows at start, not at the first dial
	}
}

// An HTTP client whose connections go through the gateway.
func ExampleDialer_DialContext() {
	d, err := client.New(client.Options{Gateway: "gw.example.com:1080"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := hc.Get("https://intranet.example.com/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)
}

// A DNS query over UDP through the gateway's relay.
func ExampleDialer_ListenPacket() {
	d, err := client.New(client.Options{Gateway: "gw.example.com:1080"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	pc, err := d.ListenPacket(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close() // ends the association
	query := []byte{ /* a DNS message */ }
	if _, err := pc.WriteTo(query, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 53), Port: 53}); err != nil {
		log.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes from %s\n", n, from)
}

// BIND: the gateway listens for one connection (FTP's active mode).
func ExampleDialer_Listen() {
	d, err := client.New(client.Options{Gateway: "gw.example.com:1080"})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	ln, err := d.Listen(context.Background(), "tcp", "ftp.example.com:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println("tell the peer to connect to", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Telling the user what to do: every error the Dialer returns for a
// problem they can fix is a type with the details.
func ExampleNoCredentialsError() {
	d, err := client.New(client.Options{
		Gateway:  "gw.example.com:1080",
		CCache:   "KEYRING:persistent:1000",
		Krb5Conf: os.DevNull,
	})
	var nc *client.NoCredentialsError
	if errors.As(err, &nc) {
		fmt.Println(nc.Type)
		fmt.Println(err)
		return
	}
	d.Close()
	// Output:
	// KEYRING
	// no Kerberos credentials this program can read: the ticket cache KEYRING:persistent:1000 is a KEYRING: (kernel keyring) cache, which only the system's Kerberos library can open; use a file cache instead: export KRB5CCNAME=FILE:/tmp/krb5cc_$(id -u) then run kinit
}

// The SOCKS reply code of a refused request, and what it means.
func ExampleReplyError() {
	err := error(&client.ReplyError{Reply: 0x02})
	var re *client.ReplyError
	if errors.As(err, &re) {
		fmt.Println(err)
	}
	// Output:
	// gateway refused the request: reply 0x02 (not allowed by ruleset, RFC 1928 §6): the gateway's rules do not allow this destination, port or command for your identity; ask its administrator
}

// The levels: ask confidentiality, accept integrity, never level 0.
func ExampleOptions_levels() {
	d, err := client.New(client.Options{
		Gateway:  "gw.example.com:1080",
		Krb5Conf: os.DevNull,
		CCache:   "FILE:/nonexistent",
		MinLevel: encap.LevelIntegrity,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	fmt.Println(d.Config.Level, d.Config.AcceptLevels)
	// Output:
	// confidentiality [integrity confidentiality]
}
