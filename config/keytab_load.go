package config

import (
	"fmt"
	"os"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// LoadKeytab reads and parses the keytab at path with the panic-guarded
// parser the configuration checks use. Errors name the path and never
// quote the file's bytes.
//
// Interim: gssapi.LoadKeytab, the one keytab loader of issue 7, replaces
// it; until then the gateway and the CLI load keytabs through here rather
// than through gokrb5's unguarded keytab.Load.
func LoadKeytab(path string) (*keytab.Keytab, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // an *fs.PathError, which names the path
	}
	kt, err := parseKeytab(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kt, nil
}
