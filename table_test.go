package prefsync

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestTable drives string and number tables and a Go map with the same random
// operations (number keys are also removed; string keys never are) and expects the same
// answers throughout: once over many keys, with the table growing, and once over 11
// keys that all want place 13 of a 16-place table that does not grow, so that every
// probe run is long and wraps past the end, and every removal shifts; and 11 strings
// that also share the 8 bits of hash a place keeps, so that only the text tells them
// apart.
func TestTable(t *testing.T) {
	var colliding, sameTag, collidingNumbers []string
	for i := 0; len(colliding) < 11; i++ {
		if k := "k" + strconv.Itoa(i); maphash.String(tableSeed, k)&15 == 13 {
			colliding = append(colliding, k)
		}
	}
	for i := 0; len(sameTag) < 11; i++ { // the same place and the same 8 bits kept
		if k := "t" + strconv.Itoa(i); maphash.String(tableSeed, k)&15 == 13 && tagOf(maphash.String(tableSeed, k)) == 7 {
			sameTag = append(sameTag, k)
		}
	}
	for n := uint64(1); len(collidingNumbers) < 11; n++ {
		if hashNumber(n)&15 == 13 {
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
		{"colliding strings with one tag", true, sameTag, 2000},
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
				switch {
				case !c.strings && r.IntN(3) == 2:
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
			if len(c.keys) == 11 && len(tb.keys) != 16 {
				t.Errorf("11 keys grew the table to %d places; only a new key may grow it", len(tb.keys))
			}
		})
	}
}

// TestTableGrowsByDoubling checks the places double as keys come, and that putting a
// string key again stores nothing new.
func TestTableGrowsByDoubling(t *testing.T) {
	tb := newTable(false, 0)
	for i := range uint64(100000) {
		tb.put(i+1, uint32(i))
	}
	if n := len(tb.keys); n != 131072 && n != 262144 {
		t.Errorf("100000 keys take %d places; growing should double, not quadruple", n)
	}
	st := newTable(true, 0)
	want := 0
	for round := range 3 {
		for i := range 100 {
			k := "key-" + strconv.Itoa(i)
			st.putString(k, uint32(round*100+i))
			if round == 0 {
				want += len(k)
			}
		}
	}
	if len(st.arena) != want {
		t.Errorf("arena holds %d bytes, want %d: each key once", len(st.arena), want)
	}
	for i := range 100 {
		if slot, ok := st.getString("key-" + strconv.Itoa(i)); !ok || slot != uint32(200+i) {
			t.Fatalf("key-%d: %d %v after growing, want %d", i, slot, ok, 200+i)
		}
	}
}
