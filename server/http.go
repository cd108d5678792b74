package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gssocks/gssocks/audit"
	"github.com/gssocks/gssocks/gssapi"
	"github.com/gssocks/gssocks/policy"
	"github.com/gssocks/gssocks/socks5"
	"github.com/hashicorp/go-hclog"
)

// The HTTP proxy front door: an HTTP/1.1 proxy connection (RFC 9112)
// whose client authenticates with Negotiate (RFC 4559) in
// Proxy-Authorization (RFC 9110 §11.7.2), through the same acceptor code,
// replay store, identity, rules, limits, dialler and audit record as a
// SOCKS session. It serves CONNECT tunnels (RFC 9110 §9.3.6) and forwards
// http:// requests in absolute-form (RFC 9112 §3.2.2); it does not cache,
// does not speak HTTP/2, does not upgrade connections and does not
// forward https:// URIs (clients tunnel TLS with CONNECT).
//
// Authentication is connection-oriented, as Negotiate is (RFC 4559 §6):
// the context established on a TCP connection authenticates the requests
// that follow on that connection only, and each request is decided by the
// rules on its own (its destination may differ from the previous one's).
// The answer token (a SPNEGO NegTokenResp or a raw Kerberos AP-REP, in the
// form the client used) goes back in the Proxy-Authenticate field of the
// response to the request that carried the credentials, for mutual
// authentication (RFC 4559 §5).
//
// Status codes: 407 with "Proxy-Authenticate: Negotiate" asks for
// credentials (without them, or after bad ones: the connection then
// closes); 403 is a denial by a rule, the default deny, the gateway-local
// deny or a per-principal limit; 502 a destination that does not resolve,
// refuses or is unreachable; 504 one that did not answer within
// timeouts.connect; 400 a malformed request, 431 a head past the limits;
// 503 a connection or session limit.
//
// Each request that carried credentials or was decided is one audit
// record (method "negotiate", level "clear", command "connect"; reply the
// SOCKS reply of the same meaning, the HTTP status in the detail). A
// challenge answered to a request without credentials is not a record: it
// is the first step of every client's handshake.

// ServeHTTPProxy accepts connections on ln until Shutdown or a listener
// error and serves each as an HTTP proxy connection authenticated with
// Negotiate, with the Settings' HTTPAcceptor. The admission limits are the
// SOCKS sessions' (a connection is a handshake until its client is
// authenticated, then a session).
func (s *Server) ServeHTTPProxy(ln net.Listener) error {
	return s.serveListener(ln, "http", (*session).runHTTP)
}

// httpConn is the state of one HTTP proxy connection beyond its session:
// the buffered reader of requests, whether the client is authenticated,
// and the answer token still to send.
type httpConn struct {
	s      *session
	br     *bufio.Reader
	lim    headLimits
	base   hclog.Logger // the log without a record's session_id
	start  time.Time
	authed bool
	answer []byte // the acceptor's answer, for the next response
	// open: the current record has something to report; it is written
	// when the request ends, or with the connection.
	open bool
	// ctx ends with the connection (Shutdown's cut included): it bounds
	// every resolution and dial of its requests.
	ctx context.Context
	// upstream is the destination connection of the request being
	// forwarded, closed with the connection.
	upstream connSlot
	// linger: a response closing the connection was sent while the
	// client may still be sending; see lingerClose.
	linger bool
}

// Lingering close bounds: how long and how much of the client's unread
// input is discarded after a response that closes the connection.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// lingerClose half-closes the connection and discards what the client
// still sends, for a while: closing a socket with unread input sends a
// reset, which can destroy the response in flight before the client read
// it (RFC 9112 §9.6).
func (h *httpConn) lingerClose() {
	cw, ok := h.s.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	h.s.conn.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(h.s.conn, lingerBytes))
}

// connSlot holds the connection of the current request so that the
// session's lifecycle closes it: one closer per HTTP connection, however
// many requests it carries (the lifecycle's list stays bounded).
type connSlot struct {
	mu     sync.Mutex
	c      net.Conn
	closed bool
}

// set makes c the current connection; false (c closed) after Close.
func (sl *connSlot) set(c net.Conn) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed {
		c.Close()
		return false
	}
	sl.c = c
	return true
}

// release closes the current connection, if any, and empties the slot.
func (sl *connSlot) release() {
	sl.mu.Lock()
	c := sl.c
	sl.c = nil
	sl.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Close closes the current connection and any later one.
func (sl *connSlot) Close() error {
	sl.mu.Lock()
	sl.closed = true
	sl.mu.Unlock()
	sl.release()
	return nil
}

// runHTTP serves an HTTP proxy connection; refusal is as for run.
func (s *session) runHTTP(refusal string) {
	h := &httpConn{s: s, lim: defaultHeadLimits, base: s.srv.logger(s.st), start: time.Now()}
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithCancel(context.Background())
	s.life.add(closerFunc(func() error { cancel(); return nil }))
	s.life.add(&h.upstream)
	defer func() {
		if h.linger {
			h.lingerClose()
		}
		s.abort()
		s.endHandshake()
		if s.counted {
			s.srv.releaseSession()
		}
		if h.open {
			s.srv.endSession(s.rec.finish(time.Now()), s.log)
		}
	}()
	defer s.recoverPanic("HTTP proxy connection")
	s.rec.update(func(a *audit.Record) { a.Method = policy.MethodNegotiate.String() })
	if refusal != "" {
		h.open = true
		h.respond(http.StatusServiceUnavailable, true, nil)
		s.rec.setEnd(audit.EndRefused, refusal)
		s.log.Warn("refused: "+refusal, "max_handshakes", s.st.MaxHandshakes, "max_handshakes_per_source", s.st.MaxHandshakesPerSource)
		return
	}
	s.inHandshake = true
	if s.st.HTTPAcceptor == nil {
		h.open = true
		h.respond(http.StatusServiceUnavailable, true, nil)
		s.rec.setEnd(audit.EndRefused, "no HTTP service principal configured")
		s.log.Error("HTTP proxy connection refused: the settings have no HTTP acceptor")
		return
	}
	h.br = bufio.NewReaderSize(s.conn, h.lim.MaxBytes)
	for h.serveRequest() {
	}
}

// serveRequest reads and serves one request; false when the connection
// is to close.
func (h *httpConn) serveRequest() bool {
	s := h.s
	h.readDeadline()
	req, err := readRequest(h.br, h.lim)
	if err != nil {
		return h.readFailed(err)
	}
	if h.open {
		// An earlier request's record is still open: a bug; never merge
		// two requests into one record.
		h.endRecord()
	}
	tok, cerr := parseNegotiate(req.Header.Values("Proxy-Authorization"))
	switch {
	case errors.Is(cerr, errNoNegotiate) && !h.authed:
		// The challenge (RFC 4559 §5): the client answers on this
		// connection, unless a body it sent would have to be skipped.
		closing := req.Close || req.ContentLength != 0
		s.log.Debug("proxy authentication required", "method", logStr(req.Method))
		h.respond(http.StatusProxyAuthRequired, closing, http.Header{"Proxy-Authenticate": {"Negotiate"}})
		return !closing
	case errors.Is(cerr, errNoNegotiate):
	case errors.Is(cerr, errNTLM):
		// Not a defective Kerberos token: the client fell back to NTLM,
		// which says what the operator should look at.
		h.open = true
		s.log.Warn("authentication failed: the client sent NTLM, not Kerberos; NTLM is not supported: the client has no Kerberos ticket for HTTP/<proxy host> (is it in a realm, and does the proxy name it uses have an HTTP/ principal in the keytab?)")
		s.rec.setEnd(audit.EndAuthFailed, cerr.Error())
		h.respond(http.StatusProxyAuthRequired, true, http.Header{"Proxy-Authenticate": {"Negotiate"}})
		return false
	case cerr != nil:
		h.open = true
		s.srv.observeNegotiate(time.Now(), fmt.Errorf("%w: %w", gssapi.ErrDefectiveToken, cerr))
		s.log.Warn("authentication failed: malformed Negotiate credentials", "error", logErr(cerr))
		s.rec.setEnd(audit.EndAuthFailed, cerr.Error())
		h.respond(http.StatusProxyAuthRequired, true, http.Header{"Proxy-Authenticate": {"Negotiate"}})
		return false
	default:
		h.open = true
		if !h.authenticate(tok) {
			h.respond(http.StatusProxyAuthRequired, true, http.Header{"Proxy-Authenticate": {"Negotiate"}})
			return false
		}
		if !s.counted && !s.becomeSession() {
			h.respond(http.StatusServiceUnavailable, true, nil)
			return false
		}
	}
	h.open = true
	return h.request(req)
}

// readDeadline bounds the wait for the next request head: the
// negotiation timeout from accept until the client is authenticated (a
// silent or slow client holds a handshake slot no longer), then the idle
// timeout between requests.
func (h *httpConn) readDeadline() {
	st := h.s.st
	switch {
	case !h.authed:
		h.s.conn.SetReadDeadline(h.start.Add(st.Timeouts.Negotiation))
	case st.Timeouts.Idle > 0:
		h.s.conn.SetReadDeadline(time.Now().Add(st.Timeouts.Idle))
	default:
		h.s.conn.SetReadDeadline(time.Time{})
	}
}

// readFailed answers a request that could not be read; always false (the
// connection closes). The client closing between requests, or a timeout
// before a request started, is the normal end of a connection.
func (h *httpConn) readFailed(err error) bool {
	s := h.s
	started := h.br.Buffered() > 0
	timedOut := errors.Is(err, os.ErrDeadlineExceeded)
	if !h.authed && timedOut {
		// Silent, or sending its head too slowly (slowloris): either way
		// no response is owed, and none is sent.
		h.open = true
		s.rec.setEnd(audit.EndRefused, "no authenticated request within the negotiation timeout")
		s.log.Info("HTTP proxy connection closed: no authenticated request within the negotiation timeout", "partial_head", started)
		return false
	}
	if !started && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || timedOut) {
		return false
	}
	h.open = true
	if timedOut {
		s.rec.setEnd(audit.EndIdleTimeout, "request head incomplete at the idle timeout")
		s.log.Info("HTTP proxy connection closed: request head incomplete at the idle timeout")
		return false
	}
	code := http.StatusBadRequest
	if errors.Is(err, errHeadTooLarge) || errors.Is(err, errTooManyFields) {
		code = http.StatusRequestHeaderFieldsTooLarge
	}
	if errors.Is(err, errHeadTooLarge) || errors.Is(err, errTooManyFields) || errors.Is(err, errBadHead) {
		h.respond(code, true, nil)
	}
	s.log.Info("bad HTTP request", "status", code, "error", logErr(err))
	s.rec.setEnd(audit.EndBadRequest, "request: "+err.Error())
	return false
}

// authenticate verifies the client's token with the HTTP acceptor and
// establishes the connection's identity; false (recorded and logged) when
// it does not verify, its client has no canonical name, or it names
// another principal than the one the connection authenticated before.
func (h *httpConn) authenticate(tok []byte) bool {
	s := h.s
	acceptStart := time.Now()
	ctx, answer, err := s.st.HTTPAcceptor.Accept(tok, s.src.Addr())
	if err != nil {
		s.srv.observeNegotiate(acceptStart, err)
		s.authFailed(err)
		return false
	}
	prev := s.hs.identity.Principal
	id, err := s.identify(ctx)
	if err != nil {
		s.srv.observeNegotiate(acceptStart, err)
		return false
	}
	if h.authed && id.Principal != prev {
		s.srv.observeNegotiate(acceptStart, errPrincipalChanged)
		s.log.Warn("authentication refused: the connection is authenticated as another principal", "previous", logStr(prev), "presented", logStr(id.Principal))
		s.rec.setEnd(audit.EndAuthFailed, "re-authentication as another principal on the same connection")
		return false
	}
	if !h.authed {
		// A later token of the same principal is verified (and spent in
		// the replay store) but the connection keeps its first context:
		// the expiry timer reads it from another goroutine, and the
		// connection's lifetime stays that of its first ticket.
		s.hs.ctx, s.hs.identity = ctx, id
	}
	if perr := ctx.PACError(); perr != nil {
		s.log.Warn("ticket PAC unusable; no group SIDs for policy", "error", logErr(perr))
	}
	if !h.authed {
		h.base = h.base.With("principal", logStr(id.Principal))
		s.log = s.log.With("principal", logStr(id.Principal))
	}
	s.log.Debug("authenticated", "front_door", "http", "service", logStr(ctx.Service().String()), "kvno", ctx.KVNO(),
		"enctype", gssapi.EnctypeName(ctx.Enctype()), "flags", ctx.Flags().String(), "spnego", ctx.SPNEGO())
	if tr := ctx.Trust(); tr.CrossRealm() {
		s.log.Info("cross-realm client", "client_realm", logStr(tr.ClientRealm), "transited", logStr(strings.Join(tr.Transited, ",")), "transited_policy_checked", tr.PolicyChecked)
	}
	s.srv.observeNegotiate(acceptStart, nil)
	h.authed, h.answer = true, answer
	// From here the connection is bounded by the idle timeout between
	// requests, not by the negotiation's.
	s.conn.SetReadDeadline(time.Time{})
	return true
}

// request decides and serves an authenticated request; false when the
// connection is to close.
func (h *httpConn) request(req *http.Request) bool {
	s := h.s
	pt, err := parseProxyTarget(req)
	if err != nil {
		s.log.Info("bad HTTP proxy request", "method", logStr(req.Method), "error", logErr(err))
		s.rec.setEnd(audit.EndBadRequest, "request: "+err.Error())
		h.respond(http.StatusBadRequest, true, nil)
		return false
	}
	s.rec.update(func(a *audit.Record) {
		a.Level, a.Command, a.Destination = policy.LevelClear.String(), socks5.CmdConnect.String(), pt.addr.String()
	})
	ctx, cancel := context.WithTimeout(h.ctx, s.st.Timeouts.Connect)
	defer cancel()
	t, err := s.resolveDest(ctx, pt.addr)
	if err != nil {
		s.log.Info("cannot resolve destination", "dest", logStr(pt.addr.String()), "error", logErr(err))
		h.dialFailed(req, "resolve: ", err)
		return !req.Close && req.ContentLength == 0
	}
	pr := s.policyRequest(socks5.CmdConnect, t, pt.addr.Port)
	pr.Level, pr.NEC, pr.Method = policy.LevelClear, false, policy.MethodNegotiate
	d := s.st.Policy.Decide(pr)
	if !d.Allow {
		s.deny(socks5.CmdConnect, d, "dest", logStr(pt.addr.String()), "front_door", "http")
		h.status(http.StatusForbidden, socks5.ReplyNotAllowed, req)
		h.respond(http.StatusForbidden, req.Close || req.ContentLength != 0, nil)
		h.endRecord()
		return !req.Close && req.ContentLength == 0
	}
	s.rec.setRule(d.Rule)
	if !s.admitPrincipal(d) {
		h.status(http.StatusForbidden, socks5.ReplyNotAllowed, req)
		h.respond(http.StatusForbidden, true, nil)
		return false
	}
	if !s.limitLifetime(d) {
		// The ticket ended: the client must authenticate again, on a
		// new connection.
		h.respond(http.StatusProxyAuthRequired, true, http.Header{"Proxy-Authenticate": {"Negotiate"}})
		return false
	}
	conn, dialed, err := raceDialer{Dial: s.srv.dialer.DialContext}.DialRace(ctx, t.addrs, pt.addr.Port)
	if err != nil {
		s.log.Info("connect failed", "dest", logStr(pt.addr.String()), "error", logErr(err))
		h.dialFailed(req, "connect: ", err)
		return !req.Close && req.ContentLength == 0
	}
	s.rec.setDialed(dialed, conn.LocalAddr())
	if !h.upstream.set(conn) {
		return false
	}
	defer h.upstream.release()
	if pt.connect {
		h.tunnel(conn, d)
		return false
	}
	keep := h.forward(req, conn, d)
	h.endRecord()
	return keep
}

// dialFailed records and answers a destination that could not be
// resolved or reached: 504 for a timeout, 502 otherwise.
func (h *httpConn) dialFailed(req *http.Request, what string, err error) {
	code := http.StatusBadGateway
	if isTimeout(err) {
		code = http.StatusGatewayTimeout
	}
	h.s.rec.setEnd(audit.EndDialFailed, what+err.Error())
	h.status(code, replyFor(err), req)
	h.respond(code, req.Close || req.ContentLength != 0, nil)
	h.endRecord()
}

// status records the response: rep, the SOCKS reply of the same meaning
// (a denial is reply 2 whatever the front door), and the HTTP status in
// the detail.
func (h *httpConn) status(code int, rep socks5.Reply, req *http.Request) {
	h.s.rec.setReply(rep)
	h.s.rec.update(func(a *audit.Record) {
		st := fmt.Sprintf("http %s %d", req.Method, code)
		if a.Detail == "" {
			a.Detail = st
		} else {
			a.Detail = st + ": " + a.Detail
		}
	})
}

// tunnel answers a CONNECT with 200 and relays the raw stream (kernel
// splice where possible) until it ends.
func (h *httpConn) tunnel(conn net.Conn, d policy.Decision) {
	s := h.s
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 Connection established\r\n")
	if h.answer != nil {
		b.WriteString("Proxy-Authenticate: " + negotiateChallenge(h.answer) + "\r\n")
		h.answer = nil
	}
	b.WriteString("\r\n")
	s.conn.SetDeadline(time.Time{})
	h.status(http.StatusOK, socks5.ReplySucceeded, &http.Request{Method: http.MethodConnect})
	if _, err := io.WriteString(s.conn, b.String()); err != nil {
		s.rec.setEnd(audit.EndError, "write response: "+err.Error())
		return
	}
	// Bytes the client sent after its CONNECT without waiting for the
	// answer (a TLS ClientHello) are in the reader's buffer.
	if n := h.br.Buffered(); n > 0 {
		early, _ := h.br.Peek(n)
		if _, err := conn.Write(early); err != nil {
			s.rec.setEnd(audit.EndError, "relay: "+err.Error())
			return
		}
		s.rec.up.Add(int64(n))
	}
	s.relay(conn, s.idleTimeout(d))
}

// forward sends req to the destination on conn and its response back to
// the client, without the hop-by-hop fields and the credentials; true
// when the client connection may carry another request.
func (h *httpConn) forward(req *http.Request, conn net.Conn, d policy.Decision) bool {
	s := h.s
	idle := s.idleTimeout(d)
	deadline := func(c net.Conn) {
		if idle > 0 {
			c.SetDeadline(time.Now().Add(idle))
		}
	}
	out := req.Clone(context.Background())
	out.RequestURI = ""
	removeHopByHop(out.Header)
	out.Header.Del("Expect")
	out.Header.Add("Via", via)
	out.Host = req.URL.Host
	// One request per outbound connection: the response's end is then
	// its framing or the close, never a guess.
	out.Close = true
	if out.Body != nil && out.Body != http.NoBody {
		out.Body = countingBody{out.Body, &s.rec.up}
	}
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") && req.ContentLength != 0 {
		deadline(s.conn)
		io.WriteString(s.conn, "HTTP/1.1 100 Continue\r\n\r\n")
	}
	deadline(conn)
	deadline(s.conn)
	bw := bufio.NewWriter(conn)
	if err := out.Write(bw); err != nil {
		return h.forwardFailed(req, "send request: ", err)
	}
	if err := bw.Flush(); err != nil {
		return h.forwardFailed(req, "send request: ", err)
	}
	ubr := bufio.NewReaderSize(conn, h.lim.MaxBytes)
	var resp *http.Response
	for interim := 0; ; interim++ {
		if interim > maxInterimResponses {
			return h.forwardFailed(req, "read response: ", errors.New("too many interim (1xx) responses"))
		}
		deadline(conn)
		r, err := readResponse(ubr, h.lim, out)
		if err != nil {
			return h.forwardFailed(req, "read response: ", err)
		}
		if r.StatusCode >= 200 || r.StatusCode == http.StatusSwitchingProtocols {
			resp = r
			break
		}
		// 1xx interim responses are the upstream hop's (RFC 9110 §15.2).
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return h.forwardFailed(req, "", errors.New("the destination switched protocols, which was not asked for"))
	}
	removeHopByHop(resp.Header)
	resp.Header.Add("Via", via)
	if h.answer != nil {
		resp.Header.Set("Proxy-Authenticate", negotiateChallenge(h.answer))
		h.answer = nil
	}
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	closing := req.Close
	bodyless := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	if !bodyless && resp.ContentLength < 0 && !chunked(resp.TransferEncoding) {
		// The destination ends its body by closing: re-frame it for a
		// client that can keep the connection.
		if req.ProtoAtLeast(1, 1) {
			resp.TransferEncoding = []string{"chunked"}
		} else {
			closing = true
		}
	}
	resp.Close = closing
	resp.Body = countingBody{resp.Body, &s.rec.down}
	h.status(resp.StatusCode, socks5.ReplySucceeded, req)
	cw := bufio.NewWriter(s.conn)
	if err := resp.Write(cw); err != nil {
		s.rec.setEnd(audit.EndError, "relay response: "+err.Error())
		return false
	}
	if err := cw.Flush(); err != nil {
		s.rec.setEnd(audit.EndError, "relay response: "+err.Error())
		return false
	}
	return !closing
}

// forwardFailed answers a forwarded request whose exchange with the
// destination failed: 504 for a timeout, else 502; the connection closes
// (the request's body may be half read).
func (h *httpConn) forwardFailed(req *http.Request, what string, err error) bool {
	code := http.StatusBadGateway
	if isTimeout(err) {
		code = http.StatusGatewayTimeout
	}
	h.s.log.Info("forwarding failed", "dest", logStr(req.URL.Host), "status", code, "error", logErr(err))
	h.s.rec.setEnd(audit.EndDialFailed, what+err.Error())
	h.status(code, socks5.ReplyGeneralFailure, req)
	h.respond(code, true, nil)
	return false
}

// errPrincipalChanged refuses a token of another principal than the one
// the connection authenticated as.
var errPrincipalChanged = errors.New("server: re-authentication as another principal on the same connection")

// via is this proxy's entry in the Via field of the messages it forwards
// (RFC 9110 §7.6.3: a proxy must send one); the pseudonym names no host.
const via = "1.1 gssocks"

// maxInterimResponses bounds the 1xx responses skipped before the final
// one: a destination could otherwise send them for ever.
const maxInterimResponses = 8

func chunked(te []string) bool { return len(te) > 0 && te[0] == "chunked" }

// countingBody counts the bytes read through it into n.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	k, err := c.ReadCloser.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// respond writes a response of the gateway's own: the status, hdr, a
// short text body and, with closing, "Connection: close". A pending
// answer token goes in Proxy-Authenticate (a 407 has its own challenge).
func (h *httpConn) respond(code int, closing bool, hdr http.Header) {
	s := h.s
	if hdr == nil {
		hdr = http.Header{}
	}
	if h.answer != nil && code != http.StatusProxyAuthRequired {
		hdr.Set("Proxy-Authenticate", negotiateChallenge(h.answer))
		h.answer = nil
	}
	body := strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if closing {
		hdr.Set("Connection", "close")
		h.linger = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	hdr.Write(&b)
	b.WriteString("\r\n")
	b.WriteString(body)
	s.conn.SetWriteDeadline(time.Now().Add(s.st.Timeouts.Negotiation))
	if _, err := io.WriteString(s.conn, b.String()); err != nil {
		s.log.Debug("HTTP response not written", "status", code, "error", logErr(err))
	}
	s.conn.SetWriteDeadline(time.Time{})
}

// endRecord writes the record of the request that ended and starts the
// next one: a new session id, the connection's identity carried over.
func (h *httpConn) endRecord() {
	s := h.s
	if !h.open {
		return
	}
	now := time.Now()
	s.srv.endSession(s.rec.finish(now), s.log)
	h.open = false
	id := audit.NewSessionID(now)
	s.rec.mu.Lock()
	prev := s.rec.r
	s.rec.r = audit.Record{
		SessionID: id, Source: prev.Source, Method: prev.Method,
		Principal: prev.Principal, PresentedPrincipal: prev.PresentedPrincipal, Realm: prev.Realm,
		UserSID: prev.UserSID, GroupSIDs: prev.GroupSIDs, GroupSIDsOmitted: prev.GroupSIDsOmitted,
		Service: prev.Service, Enctype: prev.Enctype,
	}
	s.rec.start = now
	s.rec.up.Store(0)
	s.rec.down.Store(0)
	s.rec.mu.Unlock()
	s.log = h.base.With("session_id", id, "client", s.src.String())
}
