package gssapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gssocks/gssocks/testenv/mitpeer"
)

var ntlmOID = []byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a}

// ntlmNegotiate is the start of an NTLMSSP NEGOTIATE message, as an
// optimistic NTLM token begins.
var ntlmNegotiate = []byte("NTLMSSP\x00\x01\x00\x00\x00\x07\x82\x08\xa2")

// buildNegTokenInit builds a NegTokenInit as a client sends it; mechToken
// and mic are left out when nil.
func buildNegTokenInit(mechs [][]byte, mechToken, mic []byte) (tok, mechTypes []byte) {
	mechTypes = appendTLV(nil, 0x30, bytes.Join(mechs, nil))
	seq := appendTLV(nil, 0xa0, mechTypes)
	if mechToken != nil {
		seq = appendTLV(seq, 0xa2, appendTLV(nil, 0x04, mechToken))
	}
	if mic != nil {
		seq = appendTLV(seq, 0xa3, appendTLV(nil, 0x04, mic))
	}
	inner := append(bytes.Clone(spnegoOID), appendTLV(nil, 0xa0, appendTLV(nil, 0x30, seq))...)
	return appendTLV(nil, 0x60, inner), mechTypes
}

// negTokenResp is a parsed NegTokenResp, for the tests.
type negTokenResp struct {
	negState                 int
	mech, responseToken, mic []byte
}

// parseNegTokenResp parses our answer strictly: the fields present in tag
// order, each a single element.
func parseNegTokenResp(t *testing.T, b []byte) negTokenResp {
	t.Helper()
	r := negTokenResp{negState: -1}
	tag, body, rest, err := derTLV(b)
	if err != nil || tag != 0xa1 || len(rest) != 0 {
		t.Fatalf("not a NegTokenResp: %x", b)
	}
	seq, err := derOnly(body, 0x30, "NegTokenResp")
	if err != nil {
		t.Fatal(err)
	}
	for last := -1; len(seq) > 0; {
		tag, field, next, err := derTLV(seq)
		if err != nil || int(tag&0x1f) <= last {
			t.Fatalf("NegTokenResp field %#x: %v", tag, err)
		}
		last, seq = int(tag&0x1f), next
		switch tag {
		case 0xa0:
			v, err := derOnly(field, 0x0a, "negState")
			if err != nil || len(v) != 1 {
				t.Fatalf("negState %x", field)
			}
			r.negState = int(v[0])
		case 0xa1:
			r.mech = field
		case 0xa2:
			if r.responseToken, err = derOnly(field, 0x04, "responseToken"); err != nil {
				t.Fatal(err)
			}
		case 0xa3:
			if r.mic, err = derOnly(field, 0x04, "mechListMIC"); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("NegTokenResp field %#x", tag)
		}
	}
	return r
}

// TestMITSPNEGOInitiator: MIT's gss_init_sec_context with the SPNEGO
// mechanism against our acceptor, with and without mutual authentication,
// then wrap and unwrap at integrity and confidentiality both ways.
func TestMITSPNEGOInitiator(t *testing.T) {
	r := liveRealm(t)
	for _, et := range []string{"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha256-128"} {
		for _, mutual := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/mutual=%t", et, mutual), func(t *testing.T) {
				flags := []string{"--spnego"}
				if !mutual {
					flags = append(flags, "--no-mutual")
				}
				mit, tok := mitInitiator(t, r, et, flags...)
				if mit.Ready() {
					t.Fatal("MIT's SPNEGO initiator is ready before the acceptor answered")
				}
				init, err := parseNegTokenInit(tok)
				if err != nil {
					t.Fatalf("MIT's NegTokenInit: %v", err)
				}
				t.Logf("MIT offers %s", init.offered())
				if !bytes.Equal(init.mechs[0], krb5OID) || init.mechToken == nil {
					t.Fatalf("MIT offers %s, optimistic token %t", init.offered(), init.mechToken != nil)
				}
				ctx, resp, err := liveAcceptor(t, AcceptorConfig{}).Accept(tok, netip.MustParseAddr("127.0.0.1"))
				if err != nil {
					t.Fatalf("our acceptor refuses MIT's NegTokenInit: %v", err)
				}
				if !ctx.SPNEGO() || ctx.Client().String() != "alice@"+r.Name {
					t.Fatalf("context %s, SPNEGO %t", ctx, ctx.SPNEGO())
				}
				rp := parseNegTokenResp(t, resp)
				if rp.negState != negStateAcceptCompleted || !bytes.Equal(rp.mech, krb5OID) || rp.mic != nil {
					t.Fatalf("NegTokenResp: state %d mech %x MIC %x", rp.negState, rp.mech, rp.mic)
				}
				if (rp.responseToken != nil) != mutual {
					t.Fatalf("responseToken present %t with mutual %t", rp.responseToken != nil, mutual)
				}
				if out, err := mit.Step(resp); err != nil || len(out) != 0 {
					t.Fatalf("MIT refuses our NegTokenResp: %v (more token %x)", err, out)
				}
				if !mit.Ready() {
					t.Fatal("MIT's SPNEGO initiator not ready after our answer")
				}
				if mit.Flags()&mitpeer.FlagMutual != 0 != mutual {
					t.Fatalf("MIT's flags %#x", mit.Flags())
				}
				exchange(t, ctx, mit)
			})
		}
	}
}

// TestSPNEGOMicrosoftOID: a NegTokenInit as Windows sends it, the
// Microsoft Kerberos OID first and the token under the standard one, is
// accepted without a mechListMIC and answered with the OID listed first.
// The Kerberos token is MIT's, wrapped by the test.
func TestSPNEGOMicrosoftOID(t *testing.T) {
	r := liveRealm(t)
	mit, krbTok := mitInitiator(t, r, "aes256-cts-hmac-sha1-96")
	tok, _ := buildNegTokenInit([][]byte{msKrb5OID, krb5OID, ntlmOID}, krbTok, nil)
	ctx, resp, err := liveAcceptor(t, AcceptorConfig{}).Accept(tok, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	rp := parseNegTokenResp(t, resp)
	if !bytes.Equal(rp.mech, msKrb5OID) || rp.mic != nil || rp.responseToken == nil {
		t.Fatalf("NegTokenResp: mech %x MIC %x AP-REP %d bytes", rp.mech, rp.mic, len(rp.responseToken))
	}
	if _, err := mit.Step(rp.responseToken); err != nil {
		t.Fatalf("MIT refuses the AP-REP of our NegTokenResp: %v", err)
	}
	exchange(t, ctx, mit)

	// A token framed with the Microsoft OID itself is taken too, as
	// MIT's acceptor takes it (acc_ctx_vfy_oid).
	mit2, krbTok2 := mitInitiator(t, r, "aes256-cts-hmac-sha1-96")
	_, body, _, err := derTLV(krbTok2)
	if err != nil || !bytes.HasPrefix(body, krb5OID) {
		t.Fatalf("MIT's token %x", krbTok2)
	}
	msTok := appendTLV(nil, 0x60, append(bytes.Clone(msKrb5OID), body[len(krb5OID):]...))
	tok2, _ := buildNegTokenInit([][]byte{msKrb5OID}, msTok, nil)
	ctx2, resp2, err := liveAcceptor(t, AcceptorConfig{}).Accept(tok2, netip.Addr{})
	if err != nil {
		t.Fatalf("token under the Microsoft OID: %v", err)
	}
	if _, err := mit2.Step(parseNegTokenResp(t, resp2).responseToken); err != nil {
		t.Fatal(err)
	}
	exchange(t, ctx2, mit2)
}

// TestSPNEGOMechListMIC: a client that sends a mechListMIC gets ours,
// both over the MechTypeList as the client encoded it, and the sequence
// numbers the MICs used carry on into the data phase. MIT's Kerberos
// initiator without mutual authentication holds a complete context after
// its first token, so it can make the MIC the test puts in the
// NegTokenInit. A MIC that does not verify is refused.
func TestSPNEGOMechListMIC(t *testing.T) {
	r := liveRealm(t)
	mechs := [][]byte{krb5OID, ntlmOID}
	mechTypes := appendTLV(nil, 0x30, bytes.Join(mechs, nil))

	mit, krbTok := mitInitiator(t, r, "aes256-cts-hmac-sha1-96", "--no-mutual")
	mic, err := mit.MIC(mechTypes)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := buildNegTokenInit(mechs, krbTok, mic)
	ctx, resp, err := liveAcceptor(t, AcceptorConfig{}).Accept(tok, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	rp := parseNegTokenResp(t, resp)
	if rp.mic == nil || rp.responseToken != nil || !bytes.Equal(rp.mech, krb5OID) {
		t.Fatalf("NegTokenResp: MIC %x, AP-REP %x", rp.mic, rp.responseToken)
	}
	if err := mit.VerifyMIC(mechTypes, rp.mic); err != nil {
		t.Fatalf("MIT refuses our mechListMIC: %v", err)
	}
	exchange(t, ctx, mit)

	mit2, krbTok2 := mitInitiator(t, r, "aes256-cts-hmac-sha1-96", "--no-mutual")
	mic2, err := mit2.MIC(append(bytes.Clone(mechTypes), 0)) // over other bytes
	if err != nil {
		t.Fatal(err)
	}
	tok2, _ := buildNegTokenInit(mechs, krbTok2, mic2)
	if _, _, err := liveAcceptor(t, AcceptorConfig{}).Accept(tok2, netip.Addr{}); !errors.Is(err, ErrBadIntegrity) {
		t.Fatalf("a mechListMIC over other bytes: %v", err)
	}
}

// TestSPNEGORefusals: offers this acceptor cannot complete in one round
// trip, and malformed NegTokenInits, are refused with errors that say
// what was offered.
func TestSPNEGORefusals(t *testing.T) {
	r := liveRealm(t)
	_, krbTok := mitInitiator(t, r, "aes256-cts-hmac-sha1-96")
	negResp := appendNegTokenResp(nil, krb5OID, nil, nil)
	for _, tc := range []struct {
		name string
		tok  []byte
		want error
		text string
	}{
		{"NTLM only", must(buildNegTokenInit([][]byte{ntlmOID}, ntlmNegotiate, nil)), ErrNoKrb5Mech, "offers NTLM and no Kerberos"},
		{"NTLM first", must(buildNegTokenInit([][]byte{ntlmOID, krb5OID}, ntlmNegotiate, nil)), ErrNoKrb5Mech, "prefers NTLM"},
		{"NTLM first, Kerberos token", must(buildNegTokenInit([][]byte{ntlmOID, krb5OID}, krbTok, nil)), ErrNoKrb5Mech, "Kerberos is its choice 2"},
		{"no optimistic token", must(buildNegTokenInit([][]byte{krb5OID}, nil, nil)), ErrNoKrb5Mech, "no optimistic Kerberos token"},
		{"NTLM token under Kerberos", must(buildNegTokenInit([][]byte{krb5OID}, ntlmNegotiate, nil)), ErrDefectiveToken, "not an InitialContextToken"},
		{"unknown mechanism", must(buildNegTokenInit([][]byte{{0x06, 0x03, 0x2a, 0x03, 0x04}}, []byte{1}, nil)), ErrNoKrb5Mech, "offers 1.2.3.4"},
		{"NegTokenResp first", appendTLV(nil, 0x60, append(bytes.Clone(spnegoOID), negResp...)), ErrDefectiveToken, "not a NegTokenInit"},
		{"empty mech list", must(buildNegTokenInit(nil, krbTok, nil)), ErrDefectiveToken, "mechTypes is empty"},
		{"trailing byte", append(must(buildNegTokenInit([][]byte{krb5OID}, krbTok, nil)), 0), ErrDefectiveToken, "framing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, rep, err := liveAcceptor(t, AcceptorConfig{}).Accept(tc.tok, netip.Addr{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || ctx != nil || rep != nil {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.text)
			}
			checkErrorHygiene(t, err, nil)
		})
	}
}

func must(tok, _ []byte) []byte { return tok }

// TestParseNegTokenInit pins the parser on hand-made tokens: reqFlags and
// extension fields are skipped, fields out of order, repeated or of the
// wrong type refused, and the bounds hold.
func TestParseNegTokenInit(t *testing.T) {
	krb := appendInitialToken(nil, tokIDAPReq, []byte("ap-req"))
	wrap := func(fields ...[]byte) []byte {
		inner := append(bytes.Clone(spnegoOID), appendTLV(nil, 0xa0, appendTLV(nil, 0x30, bytes.Join(fields, nil)))...)
		return appendTLV(nil, 0x60, inner)
	}
	mechTypes := appendTLV(nil, 0xa0, appendTLV(nil, 0x30, krb5OID))
	token := appendTLV(nil, 0xa2, appendTLV(nil, 0x04, krb))
	flags := appendTLV(nil, 0xa1, []byte{0x03, 0x02, 0x00, 0x60})
	ext := appendTLV(nil, 0xa5, []byte{0x05, 0x00})
	many := bytes.Repeat(ntlmOID, maxMechTypes+1)
	for _, tc := range []struct {
		name string
		tok  []byte
		ok   bool
	}{
		{"minimal", wrap(mechTypes, token), true},
		{"reqFlags and an extension", wrap(mechTypes, flags, token, ext), true},
		{"no mechTypes", wrap(token), false},
		{"out of order", wrap(token, mechTypes), false},
		{"repeated", wrap(mechTypes, mechTypes, token), false},
		{"mechToken not an OCTET STRING", wrap(mechTypes, appendTLV(nil, 0xa2, appendTLV(nil, 0x30, krb))), false},
		{"universal field tag", wrap(mechTypes, []byte{0x04, 0x00}), false},
		{"too many mechanisms", wrap(appendTLV(nil, 0xa0, appendTLV(nil, 0x30, many)), token), false},
		{"long OID", wrap(appendTLV(nil, 0xa0, appendTLV(nil, 0x30, appendTLV(nil, 0x06, make([]byte, maxOIDLen+1)))), token), false},
		{"indefinite length", []byte{0x60, 0x80, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02, 0xa0, 0x80, 0, 0, 0, 0}, false},
		{"high tag number", wrap(mechTypes, []byte{0xbf, 0x20, 0x00}), false},
	} {
		n, err := parseNegTokenInit(tc.tok)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if err != nil && !errors.Is(err, ErrDefectiveToken) {
			t.Errorf("%s: %v is not ErrDefectiveToken", tc.name, err)
		}
		if tc.ok && (!bytes.Equal(n.mechToken, krb) || len(n.mechs) != 1) {
			t.Errorf("%s: mechs %d token %x", tc.name, len(n.mechs), n.mechToken)
		}
	}
}

// TestNegTokenRespEncoding pins our answer's bytes for a short AP-REP
// and MIC.
func TestNegTokenRespEncoding(t *testing.T) {
	got := appendNegTokenResp(nil, krb5OID, []byte{0xaa}, []byte{0xbb})
	want := []byte{
		0xa1, 0x1e, 0x30, 0x1c,
		0xa0, 0x03, 0x0a, 0x01, 0x00,
		0xa1, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
		0xa2, 0x03, 0x04, 0x01, 0xaa,
		0xa3, 0x03, 0x04, 0x01, 0xbb,
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("NegTokenResp\n got %x\nwant %x", got, want)
	}
}

// FuzzNegTokenInit: the parser never panics, and what it returns lies
// within its input and within the bounds.
func FuzzNegTokenInit(f *testing.F) {
	krb := appendInitialToken(nil, tokIDAPReq, []byte("ap-req"))
	f.Add(must(buildNegTokenInit([][]byte{krb5OID}, krb, nil)))
	f.Add(must(buildNegTokenInit([][]byte{msKrb5OID, krb5OID, ntlmOID}, krb, []byte("mic"))))
	f.Add(must(buildNegTokenInit([][]byte{ntlmOID}, ntlmNegotiate, nil)))
	f.Add([]byte{0x60, 0x08, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02})
	f.Fuzz(func(t *testing.T, tok []byte) {
		n, err := parseNegTokenInit(tok)
		if err != nil {
			if !errors.Is(err, ErrDefectiveToken) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if len(n.mechs) == 0 || len(n.mechs) > maxMechTypes || !bytes.Contains(tok, n.mechTypes) {
			t.Fatalf("mechs %d", len(n.mechs))
		}
		if n.mechToken != nil && !bytes.Contains(tok, n.mechToken) {
			t.Fatal("mechToken outside the input")
		}
		if _, tok2, err := n.krb5Token(); err == nil {
			if _, _, err := parseInitialToken(tok2); err != nil && errors.Is(err, ErrBadMech) {
				t.Fatalf("krb5Token returned a non-Kerberos token: %v", err)
			}
		}
	})
}

// FuzzAcceptSPNEGO: real MIT AP-REQs wrapped in SPNEGO, mutated, through
// the acceptor: a context with an answer, or an error wrapping one
// sentinel that shows no key.
func FuzzAcceptSPNEGO(f *testing.F) {
	kt := goldenKeytab(f)
	seed := loadGoldenAPReq(f, kt, "dante-integrity")
	f.Add(must(buildNegTokenInit([][]byte{krb5OID}, seed.token, nil)))
	f.Add(must(buildNegTokenInit([][]byte{msKrb5OID, krb5OID}, seed.token, []byte("not a MIC"))))
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
			t.Fatal("accepted without a context or answer")
		}
		if err != nil && (ctx != nil || rep != nil) {
			t.Fatal("refused but returned a context")
		}
		if err != nil {
			checkErrorHygiene(t, err, secrets)
		}
	})
}
