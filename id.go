package prefsync

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Contact ids are "c_" and 13 characters of Crockford base32 over a non-zero 63-bit
// number, so the check index can key contacts by the number alone. Numbers are ordered by
// creation time (see NewContactNumber), so stores append new contacts instead of writing
// all over their indexes.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// ContactIDFromNumber renders a contact number as a contact id.
func ContactIDFromNumber(n uint64) string {
	var b [15]byte
	b[0], b[1] = 'c', '_'
	for i := 14; i >= 2; i-- {
		b[i] = crockford[n&31]
		n >>= 5
	}
	return string(b[:])
}

// ContactNumber parses a contact id back into its number.
func ContactNumber(id string) (uint64, bool) {
	if len(id) != 15 || id[0] != 'c' || id[1] != '_' {
		return 0, false
	}
	var n uint64
	for i := 2; i < 15; i++ {
		v := crockfordValue(id[i])
		if v < 0 || (i == 2 && v > 7) { // 63 bits: the first character holds three
			return 0, false
		}
		n = n<<5 | uint64(v)
	}
	return n, n != 0
}

func crockfordValue(c byte) int {
	for i := 0; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}

// ValidContactID reports whether id has the form of a contact id.
func ValidContactID(id string) bool {
	_, ok := ContactNumber(id)
	return ok
}

// NewContactNumber returns a contact number: the Unix millisecond in the high 42 bits
// (good until 2109) and 21 random bits below, and greater than last, so numbers one
// writer hands out are unique and increasing.
func NewContactNumber(now time.Time, last uint64) uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	n := uint64(now.UnixMilli())<<21 | binary.LittleEndian.Uint64(b[:])&(1<<21-1)
	return max(n, last+1) & (1<<63 - 1)
}
