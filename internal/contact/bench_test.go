package contact

import (
	"io"
	"testing"
)

func benchmarkReader(b *testing.B, format Format) {
	b.ReportAllocs()
	r := NewReader(&contactStream{format: format, n: b.N})
	for {
		_, _, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReaderJSONArray(b *testing.B) { benchmarkReader(b, JSONArray) }
func BenchmarkReaderNDJSON(b *testing.B)    { benchmarkReader(b, NDJSON) }
