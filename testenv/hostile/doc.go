// Package hostile is a hostile-client suite for gssocks (issue 8, item 9):
// it builds the real `gssocks` binary, runs it on a throwaway MIT realm
// (testenv) with a short negotiation timeout, and plays clients that
// misbehave at every step of RFC 1928 and RFC 1961: truncated and
// oversize messages, wrong versions and message types, garbage, tampered,
// replayed and reordered GSS-API tokens (RFC 4121 wrap tokens and RFC
// 4120 AP-REQs), refused protection levels, foreign and fragmented UDP
// datagrams, slow and silent clients, and the destination, replay, log,
// identity and resource-limit attacks of issue 8 items 1 to 6.
//
// Each Case names what it sends, the outcome it expects (a clean close,
// the RFC 1961 §3 abort 01 ff, a SOCKS reply code, a refused method, a
// dropped datagram), how fast the gateway must react (well under the
// negotiation timeout for malformed input, exactly at it for slow
// clients), a key word its log must show, and is followed by a health
// check: a good client still authenticates, connects to a loopback echo
// service and gets its bytes back.
//
// A case whose fix is not in the tree yet carries Issue and XFail: its
// failure is logged as expected, and its success fails the test, so that
// XFail is removed when the fix lands.
//
// The suite talks to the gateway only over loopback, as a client would:
// it needs the MIT KDC tools (testenv) and the Go toolchain to build the
// binary; it does not link the gateway's packages. It is test code only
// (all in _test.go files): like every testenv package it does not import
// the product's packages, while its tests use the client-side pieces
// (gssapi's initiator, encap, socks5) and internal/krbtest.
package hostile
