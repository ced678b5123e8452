package chaos

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/testwait"
)

// hugeBody is the size of the hostile bodies: twice the audio cap, a hundred times the JSON
// cap.
const hugeBody = 100 << 20

// rssBudget is how far above its normal peak a worker's RSS may go under hostile bodies.
const rssBudget = 64 << 20

// captivePortal is a valid chat completion served as text/html: a script that must never
// be spoken.
const captivePortal = `{"id":"chatcmpl-portal","object":"chat.completion","created":1,"model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Welcome to the captive portal."},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`

// hostileAnswers is one round of hostile answers for each provider.
func hostileAnswers(redirect string) map[string][]Hostile {
	return map[string][]Hostile{
		StepLLM: {
			HugeBody("application/json", hugeBody, true), HugeBody("application/json", hugeBody, false),
			Trickle("application/json"), InvalidJSONEchoingKey(200), WrongContentType(captivePortal),
			RetryAfterYear(StepLLM, false), RedirectTo(redirect), EchoingKey(StepLLM, 401), EchoingKey(StepLLM, 500),
		},
		// The big bodies come first and together, so they overlap in every worker's
		// text-to-speech bulkhead, as the 251 MB worker saw.
		StepTTS: {
			HugeBody("audio/mpeg", hugeBody, false), HugeBody("audio/mpeg", hugeBody, false),
			HugeBody("audio/mpeg", hugeBody, true), HugeBody("audio/mpeg", hugeBody, false),
			HugeBody("audio/mpeg", hugeBody, true), HugeBody("audio/mpeg", hugeBody, false),
			Trickle("audio/mpeg"), InvalidJSONEchoingKey(422), WrongContentType("<html><body>Sign in</body></html>"),
			RetryAfterYear(StepTTS, true), RedirectTo(redirect), EchoingKey(StepTTS, 401), EchoingKey(StepTTS, 500),
		},
		StepCRM: {
			InvalidJSONEchoingKey(500), Trickle("application/json"), RetryAfterYear(StepCRM, false),
			RedirectTo(redirect), EchoingKey(StepCRM, 401), EchoingKey(StepCRM, 500),
		},
	}
}

// TestHostileProviders answers calls with what a broken or malicious provider (or whatever
// sits in front of it) sends: bodies of 100 MB, a 1 byte/s trickle, invalid JSON and errors
// that echo the API key, HTML, a Retry-After of a year, a redirect to another host. Each
// contact must still complete or be dead-lettered with a reason, no key may reach a log, no
// redirect may be followed, and a worker's peak RSS must stay within 64 MiB of its normal
// figure.
func TestHostileProviders(t *testing.T) {
	workers, warm, n, rounds := pick(2, 3), pick(8, 30), pick(40, 150), pick(1, 3)
	s := NewScenario(t, "hostile-providers", binaries(t), workers)
	// A trickle ends only at the call's timeout.
	s.Env = []string{"LLM_TIMEOUT=4s", "ELEVENLABS_TIMEOUT=4s", "CRM_TIMEOUT=4s"}
	s.Faults[StepLLM].SetLatency(20*time.Millisecond, 80*time.Millisecond)
	s.Faults[StepTTS].SetLatency(20*time.Millisecond, 80*time.Millisecond)
	s.StartWorkers()

	// The normal figure: each worker's peak after a batch of ordinary calls.
	s.Enqueue(s.NewContacts(warm))
	if !testwait.Until(time.Minute, 100*time.Millisecond, func() bool { p, err := s.Pending(); return err == nil && p == 0 }) {
		t.Fatal("the warm-up batch did not drain")
	}
	normal := map[string]int64{}
	var figures []string
	for _, w := range s.Workers {
		normal[w.ID] = w.proc.PeakRSS()
		figures = append(figures, w.ID+" "+mib(normal[w.ID]))
	}
	s.Note("Normal peak RSS (after %d ordinary contacts): %s; budget under hostile bodies: +%s.",
		warm, strings.Join(figures, ", "), mib(rssBudget))

	for range rounds {
		for step, hs := range hostileAnswers(s.Redirect.URL) {
			s.Faults[step].Inject(hs...)
		}
	}
	s.Enqueue(s.NewContacts(n))
	served := testwait.Until(2*time.Minute, 100*time.Millisecond, func() bool {
		if p, err := s.Pending(); err == nil && p == 0 {
			return true
		}
		for _, f := range s.Faults {
			if f.Pending() > 0 {
				return false
			}
		}
		return true
	})
	var end time.Time
	for _, f := range s.Faults {
		if f.Pending() > 0 {
			s.Note("%d hostile answers were never asked for", f.Pending())
		}
		if last := f.LastServed(); last.After(end) {
			end = last
		}
	}
	if !served {
		s.Note("hostile answers still queued after 2m")
	}
	s.FaultEnded(end)
	s.WaitDrained(pick(60*time.Second, 120*time.Second))
	r := s.Finish()

	for _, w := range s.Workers {
		if grew := w.PeakRSS - normal[w.ID]; normal[w.ID] > 0 && grew > rssBudget {
			t.Errorf("%s: peak RSS %s under hostile bodies, %s above its normal %s (budget %s)",
				w.ID, mib(w.PeakRSS), mib(grew), mib(normal[w.ID]), mib(rssBudget))
		}
	}
	if r.Redirects != 0 {
		t.Errorf("%d requests followed a provider's redirect to another host", r.Redirects)
	}
	checkNoPortalScript(t, s)
}

// checkNoPortalScript fails when the captive portal's text/html page was taken for a chat
// completion (its text sent to text-to-speech) or an HTML page was stored as audio.
func checkNoPortalScript(t *testing.T, s *Scenario) {
	t.Helper()
	for _, r := range s.TTS.Requests() {
		if bytes.Contains(r.Body, []byte("captive portal")) {
			t.Error("the LLM's text/html answer was used as a call script")
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs, err := s.JS.ObjectStore(ctx, audioBucket)
	if err != nil {
		t.Errorf("audio bucket: %v", err)
		return
	}
	infos, err := obs.List(ctx)
	if err != nil {
		return // no audio at all
	}
	html := map[string]bool{}
	for _, info := range infos {
		rd, err := obs.Get(ctx, info.Name)
		if err != nil {
			continue
		}
		head := make([]byte, 16)
		k, _ := io.ReadFull(rd, head)
		rd.Close()
		if strings.HasPrefix(strings.ToLower(string(head[:k])), "<html") {
			html[info.Name] = true
		}
	}
	if len(html) > 0 {
		t.Errorf("an HTML page was stored as the audio of %s", strings.Join(slices.Sorted(maps.Keys(html)), ", "))
	}
}
