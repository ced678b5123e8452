package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// secretScanner finds credentials and full phone numbers in text. Phone numbers are matched
// by their digits, so "+14155550123", "14155550123" and a JSON-escaped "\u002b14155550123"
// are all caught, while a masked "+1415***0123" is not.
type secretScanner struct {
	secrets map[string]string // needle -> what it is
	phones  map[string]string // the 11 digits -> contact id
}

var digitRun = regexp.MustCompile(`[0-9]{11,}`)

func (s *Scenario) scanner() *secretScanner {
	sc := &secretScanner{
		secrets: map[string]string{
			llmKey: "the LLM API key", elKey: "the ElevenLabs API key",
			crmToken: "the CRM token", webhookSecret: "the CRM webhook URL's secret",
		},
		phones: map[string]string{},
	}
	for _, c := range s.contacts {
		sc.phones[strings.TrimPrefix(c.Phone, "+")] = c.ID
	}
	for _, p := range s.otherPhones {
		sc.phones[strings.TrimPrefix(p, "+")] = "a poison message"
	}
	return sc
}

// scan returns what text shows, once per kind, never the value itself.
func (sc *secretScanner) scan(text []byte) []string {
	var found []string
	for needle, what := range sc.secrets {
		if bytes.Contains(text, []byte(needle)) {
			found = append(found, what)
		}
	}
	seen := map[string]bool{}
	for _, run := range digitRun.FindAll(text, -1) {
		for i := 0; i+11 <= len(run); i++ {
			if id, ok := sc.phones[string(run[i:i+11])]; ok && !seen[id] {
				seen[id] = true
				found = append(found, "the phone number of "+id)
			}
		}
	}
	return found
}

// ScanSecrets fails the test for any credential or full phone number in what the processes
// wrote (every log file and console capture), in the alerts and incidents they raised, and
// in dead-letter headers. Dead-letter payloads are left out: they keep the original contact,
// phone included, so it can be replayed. Each source is reported once, with how many of its
// lines or messages leak, what, and where the first one is.
func (s *Scenario) ScanSecrets(r *Report) {
	s.T.Helper()
	sc := s.scanner()
	leaks := &leaks{bySource: map[string]*leak{}}
	files, _ := filepath.Glob(filepath.Join(s.LogDir, "*"))
	for _, f := range files {
		sc.scanFile(f, leaks)
	}
	for i, h := range r.deadLetterHeaders {
		leaks.add("dead-letter headers", fmt.Sprintf("dead letter %d", i+1), sc.scan([]byte(h)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, stream := range []string{alertsStream, "KV_" + incidentsBucket} {
		s.scanStream(ctx, stream, sc, leaks)
	}
	for _, src := range slices.Sorted(maps.Keys(leaks.bySource)) {
		l := leaks.bySource[src]
		s.T.Errorf("secret scan: %s: %d show %s (first: %s)",
			src, l.count, strings.Join(slices.Sorted(maps.Keys(l.what)), ", "), l.first)
	}
}

// leaks tallies what the scan found, by source (a file, a stream).
type leaks struct{ bySource map[string]*leak }

type leak struct {
	count int
	first string
	what  map[string]bool
}

func (ls *leaks) add(source, where string, found []string) {
	if len(found) == 0 {
		return
	}
	l := ls.bySource[source]
	if l == nil {
		l = &leak{first: where, what: map[string]bool{}}
		ls.bySource[source] = l
	}
	l.count++
	for _, f := range found {
		l.what[f] = true
	}
}

// scanFile scans a file line by line.
func (sc *secretScanner) scanFile(path string, ls *leaks) {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		ls.add(name, "open", []string{"an unreadable file: " + err.Error()})
		return
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	lines.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; lines.Scan(); n++ {
		ls.add(name, fmt.Sprintf("line %d", n), sc.scan(lines.Bytes()))
	}
	if err := lines.Err(); err != nil {
		ls.add(name, "end", []string{"a line too long to scan: " + err.Error()})
	}
}

// scanStream scans every message of a stream, headers and data.
func (s *Scenario) scanStream(ctx context.Context, name string, sc *secretScanner, ls *leaks) {
	_, err := s.eachMsg(ctx, name, func(seq uint64, m *jetstream.RawStreamMsg) {
		ls.add("stream "+name, fmt.Sprintf("message %d on %s", seq, m.Subject), sc.scan(append(headerText(m.Header), m.Data...)))
	})
	if err != nil && !errorsIsNotFound(err) {
		s.T.Errorf("secret scan: stream %s: %v", name, err)
	}
}
