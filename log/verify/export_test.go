package verify

// ParseKeySetScanning is ParseKeySet with the plain-text fast path off
// (every string scanned for bytes that need escapes), so that tests check
// both ways of reading strings.
func ParseKeySetScanning(b []byte) (*KeySet, error) {
	p := newOwnedParser(string(b))
	p.plain = false
	return parseKeySetWith(p, b, nil, 0)
}

// PlainText exposes plainText to tests.
var PlainText = plainText
