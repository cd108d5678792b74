package gssapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"fmt"
	"hash"
	"testing"
)

var benchSizes = []int{16 << 10, 64<<10 - 65}

// BenchmarkWrap and BenchmarkUnwrap measure per-message protection into a
// caller's buffer; compare with BenchmarkCeiling, the same primitives in Go's
// crypto/* with no token logic.
func BenchmarkWrap(b *testing.B) {
	for _, et := range aesEnctypes {
		for _, conf := range []bool{false, true} {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("%s/conf=%t/%d", EnctypeName(et), conf, n), func(b *testing.B) {
					ini, _, _ := testPair(b, et, true)
					msg := make([]byte, n)
					buf := make([]byte, 0, n+128)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					for b.Loop() {
						if _, err := ini.Wrap(buf[:0], msg, conf); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	for _, et := range aesEnctypes {
		for _, conf := range []bool{false, true} {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("%s/conf=%t/%d", EnctypeName(et), conf, n), func(b *testing.B) {
					ini, acc, _ := testPair(b, et, true)
					acc.SetDatagramMode() // one token, unwrapped again and again
					acc.recv.seq.check(ini.send.seq)
					msg := make([]byte, n)
					tok, _ := ini.Wrap(nil, msg, conf)
					scratch := make([]byte, len(tok))
					out := make([]byte, 0, n)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					for b.Loop() {
						copy(scratch, tok) // Unwrap works in place
						acc.recv.seq.window = 0
						if _, _, err := acc.Unwrap(out[:0], scratch); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkCeiling is the cost of the bare primitives over the same sizes:
// AES-CBC (Go's assembly) and HMAC. Sealed aes256-sha1 Wrap cannot beat
// 1/(1/CBCenc + 1/HMAC-SHA1); Unwrap 1/(1/CBCdec + 1/HMAC-SHA1).
func BenchmarkCeiling(b *testing.B) {
	for _, n := range benchSizes {
		buf := make([]byte, n&^15)
		key := make([]byte, 32)
		block, _ := aes.NewCipher(key)
		iv := make([]byte, 16)
		b.Run(fmt.Sprintf("aes256-cbc-encrypt/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
			}
		})
		b.Run(fmt.Sprintf("aes256-cbc-decrypt/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, buf)
			}
		})
		for _, h := range []struct {
			name string
			f    func() hash.Hash
		}{{"hmac-sha1", sha1.New}, {"hmac-sha384", sha512.New384}} {
			mac := hmac.New(h.f, key)
			sum := make([]byte, 0, 64)
			b.Run(fmt.Sprintf("%s/%d", h.name, n), func(b *testing.B) {
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					mac.Reset()
					mac.Write(buf)
					mac.Sum(sum[:0])
				}
			})
		}
	}
}
