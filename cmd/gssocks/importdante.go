package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gssocks/gssocks/danteconf"
)

// maxSockdConf bounds the sockd.conf import-dante reads; a real one is a
// few kilobytes.
const maxSockdConf = 4 << 20

const importDanteUsage = `usage: gssocks import-dante [--host NAME] SOCKD.CONF > config.hcl

Converts a Dante 1.4 server configuration (sockd.conf, danted.conf) to a
gssocks configuration, written to standard output with a comment naming the
sockd.conf line of each block and attribute. What does not convert, or
converts with a change of behaviour, is listed at the top of the output and
on standard error. "-" reads standard input.

  --host NAME   the proxy's host name as clients reach it: the host part of
                the service principals (gssapi.servicename/NAME)
`

// importDante runs "gssocks import-dante": exit 0 with the configuration
// on stdout and the notes on stderr, 1 when the file cannot be read or
// parsed (the error names file:line), 2 on a usage error.
func importDante(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gssocks import-dante", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importDanteUsage) }
	host := fs.String("host", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	src, err := readSockdConf(path)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks import-dante: %v\n", err)
		return 1
	}
	name := path
	if path == "-" {
		name = "sockd.conf"
	}
	f, err := danteconf.Parse(src, name)
	if err != nil {
		fmt.Fprintf(stderr, "gssocks import-dante: %v\n", err)
		return 1
	}
	out, notes := danteconf.ConvertWith(f, danteconf.Options{ProxyHost: *host})
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "gssocks import-dante: %v\n", err)
		return 1
	}
	for _, n := range notes {
		fmt.Fprintln(stderr, n)
	}
	return 0
}

// readSockdConf reads path ("-" for standard input), refusing a file
// larger than maxSockdConf.
func readSockdConf(path string) ([]byte, error) {
	r := io.Reader(os.Stdin)
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	src, err := io.ReadAll(io.LimitReader(r, maxSockdConf+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(src) > maxSockdConf {
		return nil, fmt.Errorf("%s: larger than %d MiB; not a sockd.conf", path, maxSockdConf>>20)
	}
	return src, nil
}
