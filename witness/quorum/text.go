package quorum

import (
	"unicode"
	"unicode/utf8"
)

func isUTF8(s string) bool { return utf8.ValidString(s) }

func isSpace(r rune) bool { return unicode.IsSpace(r) }
