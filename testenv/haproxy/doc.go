// Package haproxy holds the several-nodes integration test: Debian's
// haproxy in TCP mode with send-proxy-v2 in front of three gssocks
// gateways on loopback that share one Redis replay store, driven by our
// Go client and by Dante's socksify (curl under it), with the nodes'
// metrics listeners scraped by curl while socksify moves data. It has
// tests only; the products it drives are imported by its _test.go files.
package haproxy
