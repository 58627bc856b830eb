package prefsync

import "hash/maphash"

// table is an open-addressing hash table from keys to index slots, with linear probing
// and backward-shift deletion. Keys and values sit in two flat arrays, about half the
// memory of a Go map of the same size, which matters at millions of contacts.
type table[K comparable] struct {
	hash  func(K) uint64
	keys  []K
	vals  []uint32 // slot+1; 0 marks an empty place
	count int
}

func newTable[K comparable](hash func(K) uint64, capacity int) *table[K] {
	size := 16
	for size*4 < capacity*5 { // keep the load at or under 80%
		size *= 2
	}
	return &table[K]{hash: hash, keys: make([]K, size), vals: make([]uint32, size)}
}

var tableSeed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(tableSeed, s) }

// hashNumber mixes a contact number (already random, but not trusted to be).
func hashNumber(n uint64) uint64 {
	n ^= n >> 33
	n *= 0xff51afd7ed558ccd
	n ^= n >> 33
	return n
}

func (t *table[K]) len() int { return t.count }

func (t *table[K]) get(k K) (uint32, bool) {
	mask := uint64(len(t.keys) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		switch {
		case t.vals[i] == 0:
			return 0, false
		case t.keys[i] == k:
			return t.vals[i] - 1, true
		}
	}
}

func (t *table[K]) put(k K, slot uint32) {
	if (t.count+1)*5 > len(t.keys)*4 {
		t.grow()
	}
	mask := uint64(len(t.keys) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		if t.vals[i] == 0 {
			t.keys[i], t.vals[i] = k, slot+1
			t.count++
			return
		}
		if t.keys[i] == k {
			t.vals[i] = slot + 1
			return
		}
	}
}

func (t *table[K]) remove(k K) {
	mask := uint64(len(t.keys) - 1)
	i := t.hash(k) & mask
	for ; ; i = (i + 1) & mask {
		if t.vals[i] == 0 {
			return
		}
		if t.keys[i] == k {
			break
		}
	}
	// Shift later members of the probe run back into the hole.
	var zero K
	for j := (i + 1) & mask; t.vals[j] != 0; j = (j + 1) & mask {
		home := t.hash(t.keys[j]) & mask
		if (j-home)&mask >= (j-i)&mask {
			t.keys[i], t.vals[i] = t.keys[j], t.vals[j]
			i = j
		}
	}
	t.keys[i], t.vals[i] = zero, 0
	t.count--
}

func (t *table[K]) grow() {
	old := *t
	*t = *newTable(t.hash, len(old.keys)*8/5) // twice the places, at the same load
	for i, v := range old.vals {
		if v != 0 {
			t.put(old.keys[i], v-1)
		}
	}
}
