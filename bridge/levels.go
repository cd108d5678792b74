package bridge

import (
	"fmt"

	"github.com/gssocks/gssocks/client"
	"github.com/gssocks/gssocks/encap"
)

// SetLevels sets the protection level fields of o from the names a user
// gives (RFC 1961 §4): level is the level asked ("confidentiality",
// "integrity", or "clear" for authentication only), minLevel the lowest
// accepted ("" for level itself; "clear" accepts a gateway that answers
// authentication only). "" for level is confidentiality.
func SetLevels(o *client.Options, level, minLevel string) error {
	want := encap.LevelConfidentiality
	if level != "" {
		l, err := parseLevel("level", level)
		if err != nil {
			return err
		}
		want = l
	}
	min := want
	if minLevel != "" {
		l, err := parseLevel("min_level", minLevel)
		if err != nil {
			return err
		}
		if l > want {
			return fmt.Errorf("bridge: min_level %s is above level %s", l, want)
		}
		min = l
	}
	o.Level, o.MinLevel, o.AskClear, o.AcceptClear = 0, 0, false, false
	switch {
	case want == encap.LevelClear:
		o.AskClear = true
	case min == encap.LevelClear:
		o.Level, o.AcceptClear = want, true
	default:
		o.Level, o.MinLevel = want, min
	}
	return nil
}

func parseLevel(what, s string) (encap.Level, error) {
	l, err := encap.ParseLevel(s)
	if err != nil || l > encap.LevelConfidentiality {
		return 0, fmt.Errorf("bridge: %s %q: want confidentiality, integrity or clear", what, s)
	}
	return l, nil
}
