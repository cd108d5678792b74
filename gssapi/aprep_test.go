package gssapi

import (
	"bytes"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// reflectAPRep is AP-REP as the reflective encoder sees it: the reference
// the hand-written DER is held to.
type reflectAPRep struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	EncPart types.EncryptedData `asn1:"explicit,tag:2"`
}

// TestAPRepEncoding: appendEncAPRepPart and appendAPRep write exactly what
// asn1.Marshal writes for the same values (optional fields left out when
// zero, minimal integers of either sign, long lengths), and gokrb5 decodes
// them back.
func TestAPRepEncoding(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	ints := []int64{0, 1, 127, 128, 255, 256, 32767, 32768, 1<<30 - 1, 1<<31 - 1, 1 << 31, 1<<32 - 1, -1, -128, -129, -1 << 31}
	for i := range 2000 {
		part := encAPRepPart{
			CTime: time.Unix(rng.Int64N(1<<33), 0).In(time.FixedZone("x", 3600*rng.IntN(12))),
			Cusec: rng.IntN(1_000_000),
		}
		if i%3 != 0 {
			k := make([]byte, []int{16, 32, 0, 200}[i%4])
			part.Subkey = types.EncryptionKey{KeyType: int32(ints[i%len(ints)]), KeyValue: k}
		}
		if i%5 != 0 {
			part.SeqNumber = ints[rng.IntN(len(ints))]
		}
		ours, err := appendEncAPRepPart(nil, &part)
		if err != nil {
			t.Fatal(err)
		}
		ref := part
		ref.CTime = part.CTime.UTC()
		want, err := asn1.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		if want = asn1tools.AddASNAppTag(want, asnAppTag.EncAPRepPart); !bytes.Equal(ours, want) {
			t.Fatalf("EncAPRepPart %+v:\n ours %x\n want %x", part, ours, want)
		}
		var back messages.EncAPRepPart
		if err := back.Unmarshal(ours); err != nil || !back.CTime.Equal(part.CTime) || back.Cusec != part.Cusec || back.SequenceNumber != part.SeqNumber {
			t.Fatalf("gokrb5 reads back %+v: %v", back, err)
		}

		ed := types.EncryptedData{EType: int32(ints[i%len(ints)]), Cipher: make([]byte, rng.IntN(70000))}
		if i%7 == 0 {
			ed.KVNO = int(ints[rng.IntN(len(ints))])
		}
		for j := range ed.Cipher {
			ed.Cipher[j] = byte(rng.Uint32())
		}
		want, err = asn1.Marshal(reflectAPRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed})
		if err != nil {
			t.Fatal(err)
		}
		want = asn1tools.AddASNAppTag(want, asnAppTag.APREP)
		if ours := appendAPRep(nil, ed); !bytes.Equal(ours, want) {
			t.Fatalf("AP-REP etype %d kvno %d cipher %d bytes:\n ours %x\n want %x", ed.EType, ed.KVNO, len(ed.Cipher), ours[:min(40, len(ours))], want[:min(40, len(want))])
		}
	}
	if _, err := appendEncAPRepPart(nil, &encAPRepPart{CTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Fatal("year 10000 encoded")
	}
}
