package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
	"github.com/gssocks/gssocks/socks5"
)

// serveHTTP is the HTTP proxy: CONNECT opens a tunnel through the
// gateway, an absolute http:// URI is forwarded, anything else is not
// for a proxy.
func (b *Bridge) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !b.enter() {
		http.Error(w, "gssocks bridge: shutting down", http.StatusServiceUnavailable)
		return
	}
	defer b.leave()
	switch {
	case r.Method == http.MethodConnect:
		b.httpConnect(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http" && r.URL.Host != "":
		b.httpForward(w, r)
	case r.URL.IsAbs():
		http.Error(w, fmt.Sprintf("gssocks bridge: %s URLs are proxied with CONNECT only", r.URL.Scheme), http.StatusBadRequest)
	default:
		http.Error(w, "gssocks bridge: this is an HTTP proxy; set it as your proxy (http://"+r.Host+") instead of browsing to it", http.StatusBadRequest)
	}
}

// localConnKey keys the admitted connection a request came in on in the
// request's context (http.Server.ConnContext).
type localConnKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, localConnKey{}, c)
}

// clientOf is the local client's address.
func clientOf(r *http.Request) netip.AddrPort {
	if c, ok := r.Context().Value(localConnKey{}).(*gateConn); ok {
		return c.src
	}
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return ap
}

// httpConnect opens a tunnel (RFC 9110 §9.3.6): the gateway's CONNECT
// first, so that a refusal is an HTTP answer, then 200 and the relay.
func (b *Bridge) httpConnect(w http.ResponseWriter, r *http.Request) {
	rec := Record{Start: time.Now(), Client: clientOf(r), Method: "http", Command: "connect", Dest: r.Host}
	defer func() { b.record(rec) }()
	dest, err := socks5.ParseHostPort(r.Host)
	if err != nil {
		rec.Err = fmt.Errorf("bridge: CONNECT target %q: %w", r.Host, err)
		http.Error(w, "gssocks bridge: CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	g, lvl, err := b.dial(r.Context(), dest)
	if err != nil {
		rec.Err = err
		status := httpStatusFor(err)
		rec.Status = status
		http.Error(w, "gssocks bridge: "+err.Error(), status)
		return
	}
	defer g.Close()
	rec.Connected, rec.Level = true, lvl
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		rec.Err = fmt.Errorf("bridge: CONNECT: %w", err)
		http.Error(w, "gssocks bridge: cannot tunnel on this connection", http.StatusInternalServerError)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		rec.Err = err
		return
	}
	// Bytes the client sent after the request, already read into the
	// server's buffer (a client may not wait for the 200).
	if n := rw.Reader.Buffered(); n > 0 {
		early, _ := rw.Reader.Peek(n)
		if _, err := g.Write(early); err != nil {
			rec.Err = err
			return
		}
		rec.Up += int64(n)
	}
	up, down, err := b.relay(c, g)
	rec.Up += up
	rec.Down, rec.Err = down, err
}

// httpStatusFor maps a failed dial to an HTTP status: 403 when the
// gateway's rules refused, 504 when it took too long, 502 otherwise.
func httpStatusFor(err error) int {
	var re *client.ReplyError
	switch {
	case errors.As(err, &re) && re.Reply == socks5.ReplyNotAllowed:
		return http.StatusForbidden
	case errors.As(err, &re) && re.Reply == socks5.ReplyTTLExpired, errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// countedConn is a connection to the gateway made for forwarded HTTP
// requests, which the transport may reuse for several.
type countedConn struct {
	net.Conn
	level    encap.Level
	up, down atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.down.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.up.Add(int64(n))
	return n, err
}

// newTransport is the transport of forwarded requests: each connection a
// CONNECT through the gateway, kept for reuse a little while.
func (b *Bridge) newTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dest, err := socks5.ParseHostPort(addr)
			if err != nil {
				return nil, err
			}
			g, lvl, err := b.dial(ctx, dest)
			if err != nil {
				return nil, err
			}
			return &countedConn{Conn: g, level: lvl}, nil
		},
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       time.Minute,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
}

// httpForward forwards one absolute-URI request (RFC 9112 §3.2.2) with
// httputil.ReverseProxy: hop-by-hop fields (Connection and those it
// names, Proxy-Authorization, Proxy-Connection, Keep-Alive, TE, Trailer,
// Transfer-Encoding, Upgrade) go, no X-Forwarded-* is added, and the
// client's Forwarded fields are dropped, so nothing names the local
// client.
func (b *Bridge) httpForward(w http.ResponseWriter, r *http.Request) {
	host := r.URL.Host
	if r.URL.Port() == "" {
		host = net.JoinHostPort(r.URL.Hostname(), "80")
	}
	rec := Record{Start: time.Now(), Client: clientOf(r), Method: "http", Command: r.Method, Dest: host}
	var used *countedConn
	var up0, down0 int64
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if cc, ok := info.Conn.(*countedConn); ok {
			used, up0, down0 = cc, cc.up.Load(), cc.down.Load()
		}
	}}
	var failed error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Host = r.Host
			pr.Out.Header.Del("Proxy-Authorization")
			pr.Out.Header.Del("Proxy-Connection")
		},
		Transport: b.transport,
		ErrorLog:  hclogWriter(b.log),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			failed = err
			status := httpStatusFor(err)
			rec.Status = status
			http.Error(w, "gssocks bridge: "+userText(err), status)
		},
		ModifyResponse: func(resp *http.Response) error {
			rec.Status = resp.StatusCode
			return nil
		},
	}
	defer func() {
		if used != nil {
			rec.Connected, rec.Level = true, used.level
			rec.Up, rec.Down = used.up.Load()-up0, used.down.Load()-down0
		}
		rec.Err = failed
		// ReverseProxy aborts the handler (http.ErrAbortHandler) when the
		// response body cannot be copied to the client.
		if p := recover(); p != nil {
			if rec.Err == nil {
				rec.Err = errors.New("bridge: response copy to the client aborted")
			}
			b.record(rec)
			panic(p)
		}
		b.record(rec)
	}()
	rp.ServeHTTP(w, r.WithContext(httptrace.WithClientTrace(r.Context(), trace)))
}

// userText is the message of the client library's typed error inside
// err, without the transport's wrapping ("dial tcp: ..."), else err's.
func userText(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch e.(type) {
		case *client.ReplyError, *client.NoCredentialsError, *client.LoginError, *client.PrincipalError,
			*client.ClockSkewError, *client.KDCUnreachableError, *client.KDCError, *client.AuthError, *client.LevelError:
			return e.Error()
		}
	}
	return strings.TrimSpace(err.Error())
}
