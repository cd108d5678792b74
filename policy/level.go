package policy

import "fmt"

// Level is a protection level of RFC 1961 §4, as the policy grants and
// checks it. Its values are the octet of the subnegotiation and equal
// encap.Level's, so the server converts with a plain Level(l); policy has
// its own type because encap needs gssapi and, through it, the Kerberos
// library, which a decision engine has no use for.
type Level uint8

// Protection levels. LevelClear is not in RFC 1961: after the
// subnegotiation the SOCKS request, reply and data flow unprotected
// (authentication only); Dante and curl use it.
const (
	LevelClear           Level = 0
	LevelIntegrity       Level = 1
	LevelConfidentiality Level = 2
	LevelSelective       Level = 3 // per-message choice; never accepted
)

func (l Level) String() string {
	switch l {
	case LevelClear:
		return "clear"
	case LevelIntegrity:
		return "integrity"
	case LevelConfidentiality:
		return "confidentiality"
	case LevelSelective:
		return "selective"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel parses the names String returns ("clear", "integrity",
// "confidentiality", "selective").
func ParseLevel(s string) (Level, error) {
	for l := LevelClear; l <= LevelSelective; l++ {
		if l.String() == s {
			return l, nil
		}
	}
	return 0, fmt.Errorf("policy: unknown protection level %q (want clear, integrity or confidentiality)", s)
}
