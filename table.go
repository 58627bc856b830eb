package prefsync

import "hash/maphash"

// table is an open-addressing hash table from keys to index slots, with linear probing
// and backward-shift deletion. Keys and values sit in two flat arrays, about half the
// memory of a Go map of the same size, which matters at millions of contacts. A table's
// keys are numbers, or strings: those are copied end to end into one byte arena and the
// table keeps where each sits, so that however many keys it has, the table holds no
// pointer for the garbage collector to follow. String keys are never removed (an
// identifier stays with its contact, and a merge moves it), so the arena only grows.
//
// Beside where a string sits, a place keeps 8 bits of its hash (tag), so that probing
// past other keys compares those bits and reaches into the arena, a likely cache miss,
// only for the key sought (and one other key in 256).
type table struct {
	keys    []uint64 // the number, or where the string sits in arena: offset<<28 | tag<<20 | length
	vals    []uint32 // slot+1; 0 marks an empty place
	count   int
	strings bool
	arena   []byte
}

const (
	maxKeyLen = 1<<20 - 1
	tagShift  = 20
)

// tagOf is the 8 bits of a string's hash a place keeps, from other bits than those that
// choose the place.
func tagOf(h uint64) uint64 { return h >> 56 }

func newTable(strings bool, capacity int) *table {
	size := 16
	for size*4 < capacity*5 { // keep the load at or under 80%
		size *= 2
	}
	return &table{keys: make([]uint64, size), vals: make([]uint32, size), strings: strings}
}

var tableSeed = maphash.MakeSeed()

// hashNumber mixes a contact number (already random, but not trusted to be).
func hashNumber(n uint64) uint64 {
	n ^= n >> 33
	n *= 0xff51afd7ed558ccd
	n ^= n >> 33
	return n
}

func (t *table) len() int { return t.count }

// text returns the string key stored at place i of a string table.
func (t *table) text(i uint64) []byte {
	at, n := t.keys[i]>>28, t.keys[i]&maxKeyLen
	return t.arena[at : at+n]
}

// home returns where the key stored at place i would be put in an empty table.
func (t *table) home(i, mask uint64) uint64 {
	if t.strings {
		return maphash.Bytes(tableSeed, t.text(i)) & mask
	}
	return hashNumber(t.keys[i]) & mask
}

// find returns the place of key n (a number table) or s (a string table), or the empty
// place where it would go.
func (t *table) find(n uint64, s string) (uint64, bool) {
	mask := uint64(len(t.keys) - 1)
	if !t.strings {
		i := hashNumber(n) & mask
		for ; t.vals[i] != 0; i = (i + 1) & mask {
			if t.keys[i] == n {
				return i, true
			}
		}
		return i, false
	}
	h := maphash.String(tableSeed, s)
	tag := tagOf(h)
	i := h & mask
	for ; t.vals[i] != 0; i = (i + 1) & mask {
		if t.keys[i]>>tagShift&0xff == tag && string(t.text(i)) == s {
			return i, true
		}
	}
	return i, false
}

func (t *table) get(n uint64) (uint32, bool) { return t.slot(t.find(n, "")) }

func (t *table) getString(s string) (uint32, bool) { return t.slot(t.find(0, s)) }

func (t *table) slot(i uint64, found bool) (uint32, bool) {
	if !found {
		return 0, false
	}
	return t.vals[i] - 1, true
}

func (t *table) put(n uint64, slot uint32) { t.insert(n, "", slot) }

// putString adds s, which must be at most maxKeyLen bytes long (identifiers are far
// shorter).
func (t *table) putString(s string, slot uint32) {
	if len(s) > maxKeyLen {
		panic("prefsync: index key too long")
	}
	t.insert(0, s, slot)
}

func (t *table) insert(n uint64, s string, slot uint32) {
	i, ok := t.find(n, s)
	if ok {
		t.vals[i] = slot + 1
		return
	}
	if (t.count+1)*5 > len(t.keys)*4 {
		t.grow()
		i, _ = t.find(n, s)
	}
	t.count++
	t.keys[i], t.vals[i] = n, slot+1
	if t.strings {
		if len(t.arena) >= 1<<36 {
			panic("prefsync: index key arena full") // 64 GiB of identifiers
		}
		t.keys[i] = uint64(len(t.arena))<<28 | tagOf(maphash.String(tableSeed, s))<<tagShift | uint64(len(s))
		t.arena = append(t.arena, s...)
	}
}

// remove removes number n (string keys are never removed).
func (t *table) remove(n uint64) {
	i, ok := t.find(n, "")
	if !ok {
		return
	}
	// Shift later members of the probe run back into the hole.
	mask := uint64(len(t.keys) - 1)
	for j := (i + 1) & mask; t.vals[j] != 0; j = (j + 1) & mask {
		if (j-t.home(j, mask))&mask >= (j-i)&mask {
			t.keys[i], t.vals[i] = t.keys[j], t.vals[j]
			i = j
		}
	}
	t.keys[i], t.vals[i] = 0, 0
	t.count--
}

// grow doubles the places, at the same load. String keys stay where they are in the
// arena.
func (t *table) grow() {
	old := *t
	*t = *newTable(t.strings, len(old.keys)*8/5)
	t.count, t.arena = old.count, old.arena
	mask := uint64(len(t.keys) - 1)
	for i, v := range old.vals {
		if v == 0 {
			continue
		}
		j := old.home(uint64(i), mask)
		for t.vals[j] != 0 {
			j = (j + 1) & mask
		}
		t.keys[j], t.vals[j] = old.keys[i], v
	}
}
