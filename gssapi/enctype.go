package gssapi

// Enctype numbers (RFC 3961 §8, RFC 3962 §7, RFC 8009 §7, RFC 4757) this
// package names.
const (
	EnctypeDES3         int32 = 16
	EnctypeAES128SHA1   int32 = 17
	EnctypeAES256SHA1   int32 = 18
	EnctypeAES128SHA256 int32 = 19
	EnctypeAES256SHA384 int32 = 20
	EnctypeRC4HMAC      int32 = 23
)

// enctypeInfo is one row of the enctype table: the one place that says
// what an enctype is called, how long its keys are and whether it can key
// an RFC 4121 context here.
type enctypeInfo struct {
	id     int32
	name   string // MIT's name (krb5.conf, klist -e)
	keyLen int    // protocol key length in bytes; 0 when not checked
	// supported: an RFC 3961 simplified-profile enctype with an RFC 4121
	// token format, i.e. one of the AES enctypes.
	supported bool
}

// enctypes is the table. DES3 and RC4 keys can still open tickets (an
// Active Directory account without AES keys gets RC4-encrypted tickets,
// possibly with AES session keys), so their key lengths are checked too.
var enctypes = [...]enctypeInfo{
	{1, "des-cbc-crc", 8, false},
	{2, "des-cbc-md4", 8, false},
	{3, "des-cbc-md5", 8, false},
	{EnctypeDES3, "des3-cbc-sha1", 24, false},
	{EnctypeAES128SHA1, "aes128-cts-hmac-sha1-96", 16, true},
	{EnctypeAES256SHA1, "aes256-cts-hmac-sha1-96", 32, true},
	{EnctypeAES128SHA256, "aes128-cts-hmac-sha256-128", 16, true},
	{EnctypeAES256SHA384, "aes256-cts-hmac-sha384-192", 32, true},
	{EnctypeRC4HMAC, "arcfour-hmac", 16, false},
	{24, "arcfour-hmac-exp", 16, false},
	{25, "camellia128-cts-cmac", 16, false},
	{26, "camellia256-cts-cmac", 32, false},
}

func lookupEnctype(e int32) (enctypeInfo, bool) {
	for _, x := range enctypes {
		if x.id == e {
			return x, true
		}
	}
	return enctypeInfo{}, false
}

// EnctypeName returns MIT's name of an enctype ("aes256-cts-hmac-sha1-96"),
// or "unknown".
func EnctypeName(e int32) string {
	if x, ok := lookupEnctype(e); ok {
		return x.name
	}
	return "unknown"
}

// EnctypeSupported reports whether keys of the enctype can key an RFC 4121
// security context here: the AES enctypes 17, 18 (RFC 3962) and 19, 20
// (RFC 8009). Session keys and subkeys of other enctypes are refused with
// an UnsupportedEnctypeError.
func EnctypeSupported(e int32) bool {
	x, ok := lookupEnctype(e)
	return ok && x.supported
}

// EnctypeKeyLen is the key length in bytes of a named enctype, 0 for the
// others.
func EnctypeKeyLen(e int32) int {
	x, _ := lookupEnctype(e)
	return x.keyLen
}

// SupportedEnctypes lists the enctypes EnctypeSupported accepts, strongest
// first, as a new slice.
func SupportedEnctypes() []int32 {
	return []int32{EnctypeAES256SHA384, EnctypeAES128SHA256, EnctypeAES256SHA1, EnctypeAES128SHA1}
}
