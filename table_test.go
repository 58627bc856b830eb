package prefsync

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestTable drives string and number tables and a Go map with the same random
// operations and expects the same answers throughout: once over many keys, with the
// table growing, and once over keys that all want the same place in a table that does
// not grow, so that every probe run is long and every removal shifts.
func TestTable(t *testing.T) {
	var colliding []string
	for i := 0; len(colliding) < 12; i++ { // 12 keys fill a 16-place table to 75%
		if k := "k" + strconv.Itoa(i); maphash.String(tableSeed, k)&15 == 3 {
			colliding = append(colliding, k)
		}
	}
	var collidingNumbers []string
	for n := uint64(1); len(collidingNumbers) < 12; n++ {
		if hashNumber(n)&15 == 3 {
			collidingNumbers = append(collidingNumbers, strconv.FormatUint(n, 10))
		}
	}
	many := make([]string, 5000)
	for i := range many {
		many[i] = strconv.Itoa(i * 7)
	}
	for _, c := range []struct {
		name    string
		strings bool
		keys    []string
		steps   int
	}{
		{"strings", true, many, 20000},
		{"numbers", false, many, 20000},
		{"colliding strings", true, colliding, 2000},
		{"colliding numbers", false, collidingNumbers, 2000},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			tb := newTable(c.strings, 0)
			get := func(k string) (uint32, bool) {
				if c.strings {
					return tb.getString(k)
				}
				n, _ := strconv.ParseUint(k, 10, 64)
				return tb.get(n)
			}
			ref := map[string]uint32{}
			for i := range c.steps {
				k := c.keys[r.IntN(len(c.keys))]
				n, _ := strconv.ParseUint(k, 10, 64)
				switch remove := r.IntN(3) == 2; {
				case remove && c.strings:
					tb.removeString(k)
					delete(ref, k)
				case remove:
					tb.remove(n)
					delete(ref, k)
				case c.strings:
					tb.putString(k, uint32(i))
					ref[k] = uint32(i)
				default:
					tb.put(n, uint32(i))
					ref[k] = uint32(i)
				}
				if tb.len() != len(ref) {
					t.Fatalf("step %d: len %d, want %d", i, tb.len(), len(ref))
				}
				got, ok := get(k)
				if want, wok := ref[k]; ok != wok || ok && got != want {
					t.Fatalf("step %d: get(%s) = %d %v, want %d %v", i, k, got, ok, want, wok)
				}
			}
			for _, k := range c.keys {
				got, ok := get(k)
				want, wok := ref[k]
				if ok != wok || got != want {
					t.Fatalf("get(%s) = %d %v, want %d %v", k, got, ok, want, wok)
				}
			}
		})
	}
}

// TestTableGrowsByDoubling checks the places double as keys come, and that growing
// leaves the bytes of removed strings behind.
func TestTableGrowsByDoubling(t *testing.T) {
	tb := newTable(false, 0)
	for i := range uint64(100000) {
		tb.put(i+1, uint32(i))
	}
	if n := len(tb.keys); n != 131072 && n != 262144 {
		t.Errorf("100000 keys take %d places; growing should double, not quadruple", n)
	}
	st := newTable(true, 0)
	for i := range 12 {
		st.putString("removed-"+strconv.Itoa(i), uint32(i))
		st.removeString("removed-" + strconv.Itoa(i))
	}
	want := 0
	for i := range 100 {
		k := "kept-" + strconv.Itoa(i)
		st.putString(k, uint32(i))
		want += len(k)
	}
	if len(st.arena) != want {
		t.Errorf("arena holds %d bytes, want %d: the live keys and nothing else", len(st.arena), want)
	}
	for i := range 100 {
		if slot, ok := st.getString("kept-" + strconv.Itoa(i)); !ok || slot != uint32(i) {
			t.Fatalf("kept-%d: %d %v after growing", i, slot, ok)
		}
	}
}
