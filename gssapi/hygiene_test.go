package gssapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TestDecodeErrorsHideBytes: a ticket or authenticator that decrypts but
// does not decode, and a PAC that does not decode, are refused with our
// own text, which shows neither the decrypted bytes nor the keys. The
// decrypted parts are mangled so that gokrb5's decoder quotes them (the
// ticket is re-encrypted with the golden service key: hostile input, not
// a KDC's ticket).
func TestDecodeErrorsHideBytes(t *testing.T) {
	kt := goldenKeytab(t)
	g := loadGoldenAPReq(t, kt, "dante-integrity")
	_, body, err := parseInitialToken(g.token)
	if err != nil {
		t.Fatal(err)
	}
	var req messages.APReq
	if err := req.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	serviceKey, _, err := kt.GetEncryptionKey(req.Ticket.SName, req.Ticket.Realm, req.Ticket.EncPart.KVNO, req.Ticket.EncPart.EType)
	if err != nil {
		t.Fatal(err)
	}
	// gokrb5's decoder quotes a GeneralizedTime it cannot parse: put a
	// marker in the place of the first one of the decrypted part.
	marker := []byte("2599PLAINMARKRZ")
	mangle := func(plain []byte) []byte {
		out := bytes.Clone(plain)
		i := bytes.Index(out, []byte{0x18, 0x0f})
		if i < 0 {
			t.Fatal("no GeneralizedTime")
		}
		copy(out[i+2:], marker)
		var etp messages.EncTicketPart
		var auth types.Authenticator
		if err1, err2 := etp.Unmarshal(out), auth.Unmarshal(out); !bytes.Contains([]byte(fmt.Sprint(err1, err2)), marker[4:]) {
			t.Fatalf("gokrb5's decoder no longer quotes the input (%v, %v): the test needs another mangling", err1, err2)
		}
		return out
	}
	encode := func(r messages.APReq) []byte {
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return appendInitialToken(nil, tokIDAPReq, b)
	}
	secrets := [][]byte{serviceKey.KeyValue, g.sessionKey.KeyValue, marker}
	accept := func(tok []byte) error {
		a, err := NewAcceptor(AcceptorConfig{Keytab: kt, Now: func() time.Time { return g.ctime }})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = a.Accept(tok, netip.MustParseAddr("127.0.0.1"))
		return err
	}

	t.Run("ticket", func(t *testing.T) {
		plain, err := decrypt(req.Ticket.EncPart, serviceKey, keyusage.KDC_REP_TICKET, "ticket")
		if err != nil {
			t.Fatal(err)
		}
		r := req
		if r.Ticket.EncPart, err = encrypt(mangle(plain), serviceKey, keyusage.KDC_REP_TICKET, "ticket"); err != nil {
			t.Fatal(err)
		}
		r.Ticket.EncPart.KVNO = req.Ticket.EncPart.KVNO
		err = accept(encode(r))
		if !errors.Is(err, ErrDefectiveToken) {
			t.Fatalf("got %v", err)
		}
		checkErrorHygiene(t, err, secrets)
	})
	t.Run("authenticator", func(t *testing.T) {
		plain, err := decrypt(req.EncryptedAuthenticator, g.sessionKey, keyusage.AP_REQ_AUTHENTICATOR, "authenticator")
		if err != nil {
			t.Fatal(err)
		}
		r := req
		if r.EncryptedAuthenticator, err = encrypt(mangle(plain), g.sessionKey, keyusage.AP_REQ_AUTHENTICATOR, "authenticator"); err != nil {
			t.Fatal(err)
		}
		err = accept(encode(r))
		if !errors.Is(err, ErrDefectiveToken) {
			t.Fatalf("got %v", err)
		}
		checkErrorHygiene(t, err, secrets)
	})
	t.Run("PAC", func(t *testing.T) {
		for _, pacBytes := range [][]byte{marker, append(bytes.Repeat([]byte{4, 0, 0, 0}, 4), marker...), append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 200, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0}, marker...)} {
			ifRelevant, err := asn1.Marshal(types.AuthorizationData{{ADType: 128, ADData: pacBytes}})
			if err != nil {
				t.Fatal(err)
			}
			etp := messages.EncTicketPart{AuthorizationData: types.AuthorizationData{{ADType: 1, ADData: ifRelevant}}}
			info, err := adInfoFromTicket(&etp, serviceKey)
			if info != nil || err == nil {
				t.Fatalf("PAC %x: %v %v", pacBytes, info, err)
			}
			checkErrorHygiene(t, err, secrets)
		}
	})
}
