package gssapi

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv/golden"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// goldenAPReq is the AP-REQ of the first stream of a capture, with what the
// keytab recovers from it.
type goldenAPReq struct {
	token      []byte
	ticket     messages.Ticket
	sessionKey types.EncryptionKey
	client     Principal
	ctime      time.Time
}

func loadGoldenAPReq(tb testing.TB, kt *keytab.Keytab, capture string) goldenAPReq {
	tb.Helper()
	c, err := golden.Load(capture)
	if err != nil {
		tb.Fatal(err)
	}
	tok := authToken(c.Streams[0].ToServer)
	req, etp, auth := decodeGoldenAPReq(tb, kt, tok)
	return goldenAPReq{
		token: tok, ticket: req.Ticket, sessionKey: etp.Key,
		client: principalOf(etp.CName, etp.CRealm),
		ctime:  auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond),
	}
}

// FuzzAccept feeds mutated real AP-REQs to the acceptor: it must answer
// every input with a context or an error, never a panic, and never accept
// anything without producing an AP-REP.
func FuzzAccept(f *testing.F) {
	kt := goldenKeytab(f)
	seed := loadGoldenAPReq(f, kt, "dante-integrity")
	f.Add(seed.token)
	f.Add(loadGoldenAPReq(f, kt, "dante-krb5-aes256-cts-hmac-sha384-192").token)
	f.Add(loadGoldenAPReq(f, kt, "dante-krb5-rc4-hmac").token)
	f.Add([]byte{0x60, 0x00})
	now := func() time.Time { return seed.ctime }
	secrets := [][]byte{seed.sessionKey.KeyValue}
	for _, e := range kt.Entries {
		secrets = append(secrets, e.Key.KeyValue)
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		a, err := NewAcceptor(AcceptorConfig{Keytab: kt, Now: now, ReplayCache: NewReplayCache(4)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, rep, err := a.Accept(tok, netip.MustParseAddr("127.0.0.1"))
		if err == nil && (ctx == nil || len(rep) == 0) {
			t.Fatal("accepted without a context or AP-REP")
		}
		if err != nil && (ctx != nil || rep != nil) {
			t.Fatal("refused but returned a context")
		}
		if err != nil {
			checkErrorHygiene(t, err, secrets)
		}
	})
}

// sentinels are the package's sentinel errors.
var sentinels = []error{
	ErrDefectiveToken, ErrBadMech, ErrBadIntegrity, ErrDuplicateToken, ErrOldToken, ErrUnseqToken,
	ErrGapToken, ErrWrongDirection, ErrWrongKey, ErrReplay, ErrReplayCacheFull, ErrReplayQuota, ErrReplayStoreUnavailable, ErrSkew,
	ErrTicketExpired, ErrTicketNotYetValid, ErrClientMismatch, ErrBadAddress, ErrPrincipalNotAllowed,
	ErrNoKey, ErrKRBError, ErrContextExpired, ErrUnsupportedEnctype, ErrBadName, ErrBadKeytab, ErrNoAESKey,
	ErrNoKrb5Mech, ErrRealmNotTrusted, ErrAnonymous, ErrNotAUser, ErrFailure,
}

// checkErrorHygiene: err wraps exactly one sentinel, and its text is one
// line that shows none of the secrets (keys, decrypted bytes).
func checkErrorHygiene(t *testing.T, err error, secrets [][]byte) {
	t.Helper()
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error wraps %d sentinels: %v", n, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("multi-line error %q", msg)
	}
	for _, k := range secrets {
		if keyLeaks(msg, k) {
			t.Fatalf("error shows secret bytes: %s", msg)
		}
	}
}

// FuzzUnwrap feeds arbitrary tokens to Unwrap and VerifyMIC of contexts with
// fixed keys; valid tokens of each kind seed the corpus.
func FuzzUnwrap(f *testing.F) {
	keys := map[int32][]byte{
		EnctypeAES256SHA1:   bytes.Repeat([]byte{7}, 32),
		EnctypeAES128SHA256: bytes.Repeat([]byte{9}, 16),
	}
	pair := func(et int32) (*Context, *Context) {
		ini, _ := newContext(true, keys[et], et, "fuzz", 0, 0)
		acc, _ := newContext(false, keys[et], et, "fuzz", 0, 0)
		ini.keyFlag, acc.keyFlag = tokFlagAcceptorSubkey, tokFlagAcceptorSubkey
		acc.SetDatagramMode()
		return ini, acc
	}
	for _, et := range []int32{EnctypeAES256SHA1, EnctypeAES128SHA256} {
		ini, _ := pair(et)
		for _, conf := range []bool{false, true} {
			tok, _ := ini.Wrap(nil, []byte("seed message"), conf)
			f.Add(byte(et), tok)
			f.Add(byte(et), rotateRight(tok, 28))
		}
		f.Add(byte(et), ini.GetMIC(nil, []byte("seed message")))
	}
	f.Fuzz(func(t *testing.T, et byte, tok []byte) {
		e := EnctypeAES256SHA1
		if et&1 == 1 {
			e = EnctypeAES128SHA256
		}
		_, acc := pair(e)
		msg, _, err := acc.Unwrap(nil, bytes.Clone(tok))
		if err != nil && msg != nil {
			t.Fatal("refused token produced output")
		}
		_ = acc.VerifyMIC([]byte("seed message"), tok)
	})
}

// FuzzInitialToken: the RFC 2743 framing parser never panics and never
// returns a body outside its input.
func FuzzInitialToken(f *testing.F) {
	f.Add(appendInitialToken(nil, tokIDAPReq, []byte("body")))
	f.Add(appendInitialToken(nil, tokIDAPRep, make([]byte, 300)))
	f.Add([]byte{0x60, 0x83, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, tok []byte) {
		id, body, err := parseInitialToken(tok)
		if err != nil {
			return
		}
		if len(body) > len(tok) || !bytes.HasSuffix(tok, body) {
			t.Fatal("body is not a suffix of the token")
		}
		if again := appendInitialToken(nil, id, body); len(tok) <= 0x7f+2 && !bytes.Equal(again, tok) && tok[1] < 0x80 {
			t.Fatalf("round trip %x -> %x", tok, again)
		}
	})
}

// FuzzGSSChecksum: the 0x8003 checksum parser never panics.
func FuzzGSSChecksum(f *testing.F) {
	f.Add(appendGSSChecksum(nil, DefaultInitiatorFlags))
	f.Add(append(appendGSSChecksum(nil, FlagDeleg), 1, 0, 5, 0, 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseGSSChecksum(b)
		if err == nil && c.flags&FlagDeleg != 0 {
			t.Fatal("delegation flag reported")
		}
	})
}

// BenchmarkAccept measures AP-REQ verification and AP-REP construction on a
// real MIT ticket (golden keytab), each iteration with a fresh authenticator.
func BenchmarkAccept(b *testing.B) {
	kt := goldenKeytab(b)
	g := loadGoldenAPReq(b, kt, "dante-integrity")
	now := func() time.Time { return g.ctime }
	const pool = 4096
	toks := make([][]byte, pool)
	for i := range toks {
		_, tok, err := NewInitiator(InitiatorConfig{Client: g.client, Ticket: g.ticket, SessionKey: g.sessionKey, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = tok
	}
	newAcceptor := func() *Acceptor {
		a, err := NewAcceptor(AcceptorConfig{Keytab: kt, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		return a
	}
	a := newAcceptor()
	b.ReportAllocs()
	i := 0
	cpu0 := processCPU(b)
	for b.Loop() {
		if i == pool {
			b.StopTimer()
			a, i = newAcceptor(), 0
			b.StartTimer()
		}
		if _, _, err := a.Accept(toks[i], netip.Addr{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user+system CPU time of the process so far, in
// nanoseconds (garbage collection included): a cost per operation that
// other load on the machine inflates less than wall-clock time.
func processCPU(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
