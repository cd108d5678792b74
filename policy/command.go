package policy

import "fmt"

// DecideCommand decides whether r's command may be carried out at all,
// before any destination is known, so that the server opens no socket for
// a command the rules refuse (RFC 1928 §4-7): a BIND whose expected peer
// is unspecified (the peer is judged by Decide when it connects) and a
// UDP ASSOCIATE (each datagram's destination is judged by Decide). r's
// Host, Addrs and Port are ignored.
//
// The rules are read in order, as Decide reads them, keeping those whose
// identity, source and command matchers match r:
//
//   - a deny rule without destinations and ports denies: it would deny
//     every destination; one with them is passed over, since it denies
//     only some;
//   - an allow rule that accepts r's level (and the NEC form, when r.NEC)
//     allows: its limits and timeouts are the session's;
//   - an allow rule that does not accept them denies when it has no
//     destinations and ports (it would decide every destination so), and
//     is passed over otherwise.
//
// Otherwise the default deny. An allow here is not the allow of any
// destination: Decide still judges each one, the gateway-local deny
// included.
func (e *Engine) DecideCommand(r Request) Decision {
	r.Host, r.Addrs, r.Port = "", nil, 0
	v := e.newView(&r)
	for _, c := range e.rules {
		m := c.matchIdentity(&v)
		if m == noMatch || !c.matchCommand(r.Command) {
			continue
		}
		everyDest := c.Destinations == nil && c.Ports == nil
		d := c.decide(&r, m)
		switch {
		case d.Allow:
			d.Reason = fmt.Sprintf("rule %q allows %s (each destination judged as it comes)", c.Name, r.Command)
			return d
		case everyDest:
			return d
		}
	}
	return Decision{Reason: fmt.Sprintf("no rule allows %s for %s from %s (default deny)", r.Command, r.Identity, v.src)}
}
