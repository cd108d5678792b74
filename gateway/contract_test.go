package gateway_test

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gssocks/gssocks/config"
	"github.com/gssocks/gssocks/gateway"
)

// configLeaves lists the paths of the leaf fields of t: fields of a
// struct type declared in package config are walked into, every other
// field is a leaf.
func configLeaves(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		path := prefix + f.Name
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath() {
			out = append(out, configLeaves(f.Type, path+".")...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// TestReloadContractCoversConfig: every field of config.Config is in the
// reload contract, applied or named as restart-required, and the
// contract names no field that is gone. A new configuration field fails
// here until someone decides what SIGHUP does with it.
func TestReloadContractCoversConfig(t *testing.T) {
	leaves := configLeaves(reflect.TypeFor[config.Config](), "")
	var rows []string
	for _, r := range gateway.ReloadContract() {
		if r.Name == "" || r.How == "" {
			t.Errorf("row %q lacks its file name or what a reload does", r.Field)
		}
		rows = append(rows, r.Field)
	}
	// A row names a leaf, or a block whose leaves all share its effect
	// (Kerberos.ReplayCache).
	covers := func(row, leaf string) bool { return leaf == row || strings.HasPrefix(leaf, row+".") }
	for _, l := range leaves {
		if !slices.ContainsFunc(rows, func(r string) bool { return covers(r, l) }) {
			t.Errorf("config.Config.%s is not in the reload contract (gateway/contract.go)", l)
		}
	}
	for _, r := range rows {
		if !slices.ContainsFunc(leaves, func(l string) bool { return covers(r, l) }) {
			t.Errorf("the reload contract names %s, which config.Config does not have", r)
		}
	}
	if len(leaves) < 15 {
		t.Fatalf("walked only %d fields: %v", len(leaves), leaves)
	}
}

// TestReloadContractInREADME: the README's reload table has a row for
// each field, with the same effect.
func TestReloadContractInREADME(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, r := range gateway.ReloadContract() {
		row := "| `" + r.Name + "` | " + r.Effect.String() + " |"
		if r.Field == "File" {
			continue
		}
		if !strings.Contains(readme, row) {
			t.Errorf("README.md has no reload table row starting %q", row)
		}
	}
}
