package contact

import (
	"hash/maphash"
	"math"
)

// idIndex remembers the id of every record of a file to find repeated ids, in 15–21 bytes
// a record, with no pointers and little garbage (a Go map of the same hashes and positions
// takes 24–38 bytes an entry, measured, and its growth leaves as much again to the garbage
// collector):
//
//   - the 64-bit hash of each record's id, by record index, in fixed-size chunks that are
//     never copied (8 bytes a record; 0 for a record without id or with a repeated id);
//   - an open-addressing table (linear probing, at most 3/4 full) of 1 + the record index of
//     each id's first occurrence, with a control byte a slot holding 7 bits of the hash, so
//     that a probe reads the hash of another record only when those 7 bits match (5 bytes a
//     slot; 7–14 bytes a distinct id);
//   - the line of each record as runs of records on consecutive lines (one run for an NDJSON
//     file without blank lines; 8 bytes a record for a pretty-printed array).
//
// Only the table is reallocated as it grows (doubling); the old one is the only garbage.
//
// Two different ids share a hash with probability about n²/2⁶⁵, which reports a false repeat.
// Records past index 2³²−2 are not indexed (their repeats are not reported).
type idIndex struct {
	seed   maphash.Seed
	chunks [][]uint64 // hashes by record index: chunks[i>>chunkBits][i&chunkMask]
	n      int        // records recorded
	ctrl   []uint8    // per slot: 0 empty, else 0x80 | the top 7 bits of the hash
	table  []uint32   // per slot: 1 + record index
	used   int        // occupied slots
	runs   []lineRun
}

// lineRun says that records index, index+1, … start on lines line, line+1, …, up to the next run.
type lineRun struct{ index, line uint32 }

const (
	chunkBits       = 16 // 512 KiB chunks
	chunkMask       = 1<<chunkBits - 1
	minTableSlots   = 1 << 10
	maxIndexedCount = math.MaxUint32 - 1
)

func newIDIndex() *idIndex {
	return &idIndex{seed: maphash.MakeSeed(), ctrl: make([]uint8, minTableSlots), table: make([]uint32, minTableSlots)}
}

func (x *idIndex) hashAt(i int) uint64 { return x.chunks[i>>chunkBits][i&chunkMask] }

func ctrlOf(h uint64) uint8 { return 0x80 | uint8(h>>57) }

// add records the id of the record at pos and returns the position of the first record with
// the same id when there is one. Records must be added in increasing index order.
func (x *idIndex) add(id string, pos Position) (first Position, repeated bool) {
	if pos.Index >= maxIndexedCount || pos.Index < x.n {
		return Position{}, false
	}
	var h uint64
	if id != "" {
		if h = maphash.String(x.seed, id); h == 0 {
			h = 1 // 0 means "no id"
		}
		c, mask := ctrlOf(h), uint64(len(x.table)-1)
		for j := h & mask; x.ctrl[j] != 0; j = (j + 1) & mask {
			if x.ctrl[j] == c {
				if v := x.table[j]; x.hashAt(int(v-1)) == h {
					return x.position(int(v - 1)), true
				}
			}
		}
	}
	for x.n <= pos.Index { // records skipped (none today) get no id
		x.push(0, Position{Index: x.n, Line: pos.Line})
	}
	if h != 0 {
		if (x.used+1)*4 > len(x.table)*3 {
			x.grow() // before the hash is stored: grow inserts the stored ones
		}
		x.chunks[pos.Index>>chunkBits][pos.Index&chunkMask] = h
		x.insert(h, uint32(pos.Index+1))
		x.used++
	}
	return Position{}, false
}

// push appends record x.n with hash h at pos.
func (x *idIndex) push(h uint64, pos Position) {
	if x.n&chunkMask == 0 {
		x.chunks = append(x.chunks, make([]uint64, 1<<chunkBits))
	}
	x.chunks[x.n>>chunkBits][x.n&chunkMask] = h
	line := uint32(min(pos.Line, math.MaxUint32))
	if k := len(x.runs); k == 0 || x.runs[k-1].line+(uint32(x.n)-x.runs[k-1].index) != line {
		x.runs = append(x.runs, lineRun{index: uint32(x.n), line: line})
	}
	x.n++
}

func (x *idIndex) insert(h uint64, v uint32) {
	mask := uint64(len(x.table) - 1)
	j := h & mask
	for x.ctrl[j] != 0 {
		j = (j + 1) & mask
	}
	x.ctrl[j], x.table[j] = ctrlOf(h), v
}

// grow doubles the table. It reads the hashes in record order rather than through the old
// table, which is faster: a record has a hash only when it is the first of its id.
func (x *idIndex) grow() {
	n := 2 * len(x.table)
	x.ctrl, x.table = make([]uint8, n), make([]uint32, n)
	for c, chunk := range x.chunks {
		for i, h := range chunk[:min(len(chunk), x.n-c<<chunkBits)] {
			if h != 0 {
				x.insert(h, uint32(c<<chunkBits+i+1))
			}
		}
	}
}

// position is the position of record i.
func (x *idIndex) position(i int) Position {
	lo, hi := 0, len(x.runs) // the last run with index <= i
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if int(x.runs[mid].index) <= i {
			lo = mid
		} else {
			hi = mid
		}
	}
	r := x.runs[lo]
	return Position{Index: i, Line: int(r.line) + (i - int(r.index))}
}
