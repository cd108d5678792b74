package gssapi

import (
	"errors"
	"slices"
	"testing"
)

func TestParsePrincipals(t *testing.T) {
	got, err := ParsePrincipals([]string{"rcmd/gw", "socks/gw@A.TEST"})
	if err != nil || !slices.Equal(got, []Principal{{"rcmd/gw", ""}, {"socks/gw", "A.TEST"}}) {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := ParsePrincipals(nil); got != nil || err != nil {
		t.Fatalf("empty list: %v %v", got, err)
	}
	if _, err := ParsePrincipals([]string{"rcmd/gw", "a//b"}); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad name: %v", err)
	}
}
