package testenv

import (
	"os"
	"testing"
)

// Require checks that the given programs (by default krb5kdc, kdb5_util,
// kadmin.local and kinit) can be found on PATH, /usr/sbin or /sbin. If one
// is missing the test is skipped with a one-line message naming the
// packages to install, or, when CI=true, fails with it.
func Require(tb testing.TB, tools ...string) {
	tb.Helper()
	if len(tools) == 0 {
		tools = defaultTools()
	}
	err := lookTools(tools...)
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%v (CI=true: the tools must be installed)", err)
	}
	tb.Skip(err.Error())
}

// StartForTest is Require plus Start, with Close registered in tb.Cleanup.
// It fails the test if the realm does not start.
func StartForTest(tb testing.TB, opts Options) *Realm {
	tb.Helper()
	Require(tb)
	r, err := Start(opts)
	if err != nil {
		tb.Fatalf("testenv: start realm: %v", err)
	}
	tb.Cleanup(func() {
		if err := r.Close(); err != nil {
			tb.Errorf("testenv: close realm: %v", err)
		}
	})
	return r
}
