package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/gssocks/gssocks/client"
)

// Exit codes of `gssocks connect` (and of `gssocks bridge` failing to
// start). The README's Clients section lists them.
const (
	exitOK       = 0 // the connection ran and the destination closed it
	exitFailure  = 1 // anything else: the gateway unreachable, an I/O error in the relay
	exitUsage    = 2 // bad flags or arguments, no gateway, a bad client file
	exitKerberos = 3 // no usable Kerberos credentials, or the KDC refused or could not be reached
	exitGateway  = 4 // the gateway refused the authentication or the protection level
	exitRefused  = 5 // the gateway refused the request (a SOCKS reply: its rules, an unreachable destination)
)

const connectUsage = `usage: gssocks connect [flags] HOST PORT

Connects stdin and stdout to HOST:PORT through the gateway, with your
Kerberos identity, protected at the configured level; for ssh:

  ssh -o ProxyCommand='gssocks connect --gateway gw.example.com:1080 %h %p' host

Exit status: 0 the destination closed the connection, 1 other failure,
2 usage, 3 Kerberos credentials or KDC, 4 the gateway refused the
authentication or the protection level, 5 the gateway refused the request.

flags:
`

// connectCmd is `gssocks connect HOST PORT`: stdin to the destination,
// the destination to stdout, with the end of stdin passed on as a
// half-close. It ends when the destination closes its side.
func connectCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gssocks connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, connectUsage)
		fs.PrintDefaults()
	}
	cf := addClientFlags(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "bound on getting a ticket, the gateway's handshake and its connect")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitUsage
	}
	host, port := fs.Arg(0), fs.Arg(1)
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		fmt.Fprintf(stderr, "gssocks connect: port %q: want a number from 1 to 65535\n", port)
		return exitUsage
	}
	s, err := cf.resolve(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks connect: %v\n", err)
		return exitUsage
	}
	opts, err := s.options()
	if err != nil {
		fmt.Fprintf(stderr, "gssocks connect: %v\n", err)
		return exitUsage
	}
	d, err := client.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks connect: %v\n", err)
		return clientExit(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "gssocks connect: %s: %v\n", net.JoinHostPort(host, port), err)
		return clientExit(err)
	}
	defer c.Close()
	go func() {
		if _, err := io.Copy(c, stdin); err != nil {
			c.Close()
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	if _, err := io.Copy(stdout, c); err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(stderr, "gssocks connect: %s: %v\n", net.JoinHostPort(host, port), err)
		return exitFailure
	}
	return exitOK
}

// clientExit is the exit status for an error of the client library.
func clientExit(err error) int {
	var (
		noCreds *client.NoCredentialsError
		login   *client.LoginError
		princ   *client.PrincipalError
		skew    *client.ClockSkewError
		kdc     *client.KDCUnreachableError
		kdcErr  *client.KDCError
		auth    *client.AuthError
		level   *client.LevelError
		reply   *client.ReplyError
	)
	switch {
	case errors.As(err, &reply):
		return exitRefused
	case errors.As(err, &auth), errors.As(err, &level):
		return exitGateway
	case errors.As(err, &noCreds), errors.As(err, &login), errors.As(err, &princ), errors.As(err, &skew),
		errors.As(err, &kdc), errors.As(err, &kdcErr):
		return exitKerberos
	}
	return exitFailure
}
