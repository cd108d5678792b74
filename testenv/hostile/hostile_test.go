package hostile

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/internal/krbtest"
	"github.com/gssocks/gssocks/testenv"
	"github.com/hashicorp/go-hclog"
)

var realm = krbtest.NewShared(testenv.Options{})

func TestMain(m *testing.M) { os.Exit(realm.Run(m)) }

// TestHostileClients runs every case against the real binary; see the
// package comment. -run 'TestHostileClients/auth' picks a group.
func TestHostileClients(t *testing.T) {
	env := realm.Get(t)
	w := NewWorld(t, env, raceEnabled)
	results := Run(t, w, Cases())
	t.Logf("hostile-client suite (gateway built with -race: %t):\n%s", raceEnabled, Summary(results))
}

// TestKeyLeak pins the leak detector of the keytab case on the forms a
// key takes in logs, hclog's own renderings included.
func TestKeyLeak(t *testing.T) {
	key := []byte{0x05, 0x9f, 'a', 'b', 0x00, 0xe1, 0x0c, 'z', 0x7f, 0x80, 0x11, 0x22, 0xfe, '\n', 'q', 0xc3}
	hclogged := func(json bool) string {
		var b strings.Builder
		hclog.New(&hclog.LoggerOptions{Output: &b, JSONFormat: json}).Error("keytab", "error", errors.New("bad: "+string(key)))
		return b.String()
	}
	for name, text := range map[string]string{
		"raw":               "error=" + string(key),
		"go-quoted":         "error=" + strconv.Quote(string(key)),
		"hclog text":        hclogged(false),
		"hclog json":        hclogged(true),
		"hex":               "key=" + hex.EncodeToString(key[2:14]),
		"decimal byte list": fmt.Sprint(key),
		"base64":            base64.StdEncoding.EncodeToString(key),
	} {
		if keyLeak(text, [][]byte{key}) == nil {
			t.Errorf("%s: leak not found in %q", name, text)
		}
	}
	for _, text := range []string{
		"keytab changed but cannot be loaded: truncated at entry 3",
		strings.Repeat("\ufffd", 40) + strings.Repeat("\xff", 40),
	} {
		if err := keyLeak(text, [][]byte{key}); err != nil {
			t.Errorf("false alarm on %q: %v", text, err)
		}
	}
}
