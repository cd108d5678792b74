// Command extract turns the golden SOCKS5/GSS-API pcap captures into the
// JSON files embedded by package github.com/gssocks/gssocks/testenv/golden.
//
// Usage, from the module root:
//
//	go run ./testenv/golden/cmd/extract -in ../shared/golden -out testenv/golden/testdata
//
// For every <in>/NAME.pcap it writes <out>/NAME.json, taking the
// description from the first comment line of <in>/NAME.txt, and it copies
// <in>/keys/{proxy.keytab,krb5.conf} to <out>/keys/. Any capture it cannot
// reassemble completely (missing bytes, a truncated final token, ...) is an
// error and nothing is written.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/gssocks/gssocks/testenv/golden/internal/extract"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("extract: ")
	in := flag.String("in", "../shared/golden", "directory with the *.pcap captures, their *.txt decodes and keys/")
	out := flag.String("out", "testenv/golden/testdata", "output directory")
	port := flag.Uint("port", extract.DefaultPort, "SOCKS server TCP port")
	quiet := flag.Bool("q", false, "do not print a summary per capture")
	flag.Parse()
	if flag.NArg() != 0 || *port == 0 || *port > 65535 {
		flag.Usage()
		os.Exit(2)
	}

	files, sums, err := extract.Files(*in, uint16(*port))
	if err != nil {
		log.Fatal(err)
	}
	if err := extract.Write(*out, files); err != nil {
		log.Fatal(err)
	}
	if *quiet {
		return
	}
	for _, s := range sums {
		r := s.Reassembly
		fmt.Printf("%-40s link=%-8v frames=%-3d streams=%d messages=%-3d raw=%-4dB datagrams=%d out-of-order=%d dup-segments=%d overlap=%dB\n",
			s.Name, s.LinkType, s.Frames, s.Streams, s.Messages, s.RawBytes, s.Datagrams, r.OutOfOrder, r.DupSegments, r.OverlapBytes)
	}
}
