package contact

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIDIndexFindsRepeatsLikeAMap feeds the index 300,000 records (the table grows many
// times) with ids repeated at random, records without id and lines that follow several
// patterns, and checks every answer against a map.
func TestIDIndexFindsRepeatsLikeAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := newIDIndex()
	want := map[string]Position{}
	line := 1
	distinct := 0
	for i := range 300_000 {
		switch { // lines: consecutive, blank lines between, several records on one line
		case i%1000 < 500:
			line++
		case i%1000 < 700:
			line += 2 + rng.IntN(3)
		case i%1000 < 900:
		default:
			line += 7
		}
		pos := Position{Index: i, Line: line}
		var id string
		switch r := rng.IntN(100); {
		case r < 2:
			id = "" // no id
		case r < 12 && i > 0:
			id = fmt.Sprintf("id-%d", rng.IntN(i)) // maybe an earlier id
		default:
			id = fmt.Sprintf("id-%d", i)
		}
		first, repeated := x.add(id, pos)
		w, seen := want[id]
		switch {
		case id == "":
			if repeated {
				t.Fatalf("record %d without id reported as a repeat of %v", i, first)
			}
		case seen:
			if !repeated || first != w {
				t.Fatalf("record %d, id %q: got (%v, %v), want a repeat of %v", i, id, first, repeated, w)
			}
		default:
			if repeated {
				t.Fatalf("record %d, first id %q reported as a repeat of %v", i, id, first)
			}
			want[id] = pos
			distinct++
		}
	}
	if x.used != distinct {
		t.Fatalf("table holds %d ids, want %d", x.used, distinct)
	}
	slots := 0
	for _, c := range x.ctrl {
		if c != 0 {
			slots++
		}
	}
	if slots != distinct || x.used*4 > len(x.table)*3 {
		t.Fatalf("%d occupied slots of %d for %d ids", slots, len(x.table), distinct)
	}
	for id, pos := range want {
		if got := x.position(pos.Index); got != pos {
			t.Fatalf("position of %q = %v, want %v", id, got, pos)
		}
	}
}

// TestIDIndexMemory checks the bytes a contact costs for a million distinct ids.
func TestIDIndexMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million ids")
	}
	x := newIDIndex()
	for i := range 1_000_000 {
		x.add(fmt.Sprintf("c-%07d", i), Position{Index: i, Line: i + 1})
	}
	bytes := 8*len(x.chunks)<<chunkBits + 5*len(x.table) + 8*cap(x.runs)
	t.Logf("%.1f bytes a contact (%d table slots, %d line runs)", float64(bytes)/1e6, len(x.table), len(x.runs))
	if bytes > 20_000_000 {
		t.Fatalf("%d bytes for a million ids, want at most 20 MB", bytes)
	}
}
