package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/gssocks/gssocks/config"
)

const defaultConfig = "/etc/gssocks/config.hcl"

// loadConfig loads and validates a configuration, writing its diagnostics
// (warnings too) to w. The Config is nil on errors.
func loadConfig(path string, w io.Writer) *config.Config {
	cfg, files, diags := config.Loader{}.Load(path)
	if len(diags) > 0 {
		config.FormatDiagnostics(w, files, diags)
	}
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

func configFlag(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("gssocks "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("config", defaultConfig, "configuration `file`")
}

func check(args []string, stdout, stderr io.Writer) int {
	fs, path := configFlag("check", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := loadConfig(*path, stderr)
	if cfg == nil {
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK: %d listener(s), %d rule(s), %d group alias(es), keytab %s\n",
		*path, len(cfg.Listen), len(cfg.Engine.Rules()), len(cfg.Groups), cfg.Kerberos.Keytab)
	return 0
}
