package gateway_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gateway"
	"github.com/gssocks/gssocks/internal/testutil"
)

// TestLogErrorsOneLineARefusal: each error errors.Join holds is one line,
// its class and its cause together; an error wrapping two (fmt.Errorf
// with two %w, as every refusal of Provision is) is not cut in two.
func TestLogErrorsOneLineARefusal(t *testing.T) {
	var buf testutil.LogBuffer
	l := gateway.NewLogger(config.Log{Level: "info", Format: "json"}, &buf)
	cause := errors.New("open /x/audit.log: not a directory")
	err := errors.Join(
		fmt.Errorf("%w: %w", gateway.ErrAudit, cause),
		fmt.Errorf("%w: %w", gateway.ErrListen, errors.New("bind: address already in use")))
	gateway.LogErrors(l, "cannot start", err)
	var got []string
	for _, m := range testutil.JSONLines(t, buf.String()) {
		got = append(got, fmt.Sprint(m["error"]))
	}
	want := []string{
		"cannot append to the audit file: open /x/audit.log: not a directory",
		"cannot listen: bind: address already in use",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
