// Package adtest tests gssocks against a real Active Directory domain: a
// Samba 4 DC (testenv/samba) whose Heimdal KDC issues tickets with a PAC.
// gokrb5 logs users in there, our GSS-API initiator and acceptor establish
// contexts on those tickets, the acceptor reads the users' SIDs and groups
// (nested groups expanded by the KDC) from the PAC, the policy decides on
// them and the gateway enforces that end to end.
//
// The package has tests only. The DC runs in a network namespace that the
// host cannot reach, so TestMain starts it from the host side and then
// runs the test binary again inside the namespace (ip netns exec), with
// GSSOCKS_AD_NETNS naming the namespace and GSSOCKS_AD_INFO holding the
// domain's facts as JSON (samba.Info); that second run runs the tests.
// Plain "go test ./..." is enough: without root or Samba (and with no way
// to install it) the tests skip with one line, or fail when CI=true.
package adtest
