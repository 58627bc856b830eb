package prefsync

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestTable drives the table and a Go map with the same random operations, including
// colliding keys, and expects the same answers throughout.
func TestTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, hash := range []func(string) uint64{hashString, func(string) uint64 { return 7 }} {
		tb := newTable(hash, 0)
		ref := map[string]uint32{}
		n := 20000
		if hash("") == 7 {
			n = 600 // every key collides: keep the quadratic case small
		}
		for i := range n {
			k := strconv.Itoa(r.IntN(n / 4))
			switch r.IntN(3) {
			case 0, 1:
				tb.put(k, uint32(i))
				ref[k] = uint32(i)
			case 2:
				tb.remove(k)
				delete(ref, k)
			}
			if tb.len() != len(ref) {
				t.Fatalf("step %d: len %d, want %d", i, tb.len(), len(ref))
			}
		}
		for i := range n / 4 {
			k := strconv.Itoa(i)
			got, ok := tb.get(k)
			want, wok := ref[k]
			if ok != wok || got != want {
				t.Fatalf("get(%s) = %d %v, want %d %v", k, got, ok, want, wok)
			}
		}
	}
}

func TestTableGrowsByDoubling(t *testing.T) {
	tb := newTable(hashNumber, 0)
	for i := range uint64(100000) {
		tb.put(i+1, uint32(i))
	}
	if n := len(tb.keys); n != 131072 && n != 262144 {
		t.Errorf("100000 keys take %d places; growing should double, not quadruple", n)
	}
}
