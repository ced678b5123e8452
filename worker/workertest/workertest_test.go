package workertest_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/worker/workertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, workertest.LeakOptions()...) }

func TestHealthyProvidersCompleteEveryContact(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	said := map[string]string{}
	h := workertest.Start(t, workertest.Options{
		WriteScript: func(_ context.Context, c workertest.Contact) (string, error) {
			return "Hello " + c.Name, nil
		},
		Synthesize: func(_ context.Context, c workertest.Contact, script string) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			said[c.ID] = script
			return []byte("audio of " + script), nil
		},
	})
	h.Enqueue(
		workertest.Contact{ID: "c-1", Name: "Ada", Phone: "+14155550101"},
		workertest.Contact{ID: "c-2", Name: "Grace", Phone: "+14155550102"},
	)
	h.WaitIdle()

	for id, name := range map[string]string{"c-1": "Ada", "c-2": "Grace"} {
		if !h.Completed(id) {
			t.Errorf("%s did not complete", id)
		}
		mu.Lock()
		if got := said[id]; got != "Hello "+name {
			t.Errorf("%s: text-to-speech got %q, want the LLM's script", id, got)
		}
		mu.Unlock()
	}
	if h.Completed("c-unknown") {
		t.Error("a contact never enqueued reports completed")
	}
	if dls := h.DeadLetters(); len(dls) != 0 {
		t.Errorf("dead letters of healthy providers: %+v", dls)
	}
}

func TestAQuotaErrorDeadLettersTheContactAndOthersComplete(t *testing.T) {
	t.Parallel()
	h := workertest.Start(t, workertest.Options{
		WriteScript: func(_ context.Context, c workertest.Contact) (string, error) {
			if c.ID == "c-broke" {
				return "", workertest.ProviderError(workertest.LLM, 402)
			}
			return "Hello", nil
		},
	})
	h.Enqueue(
		workertest.Contact{ID: "c-ok", Phone: "+14155550101"},
		workertest.Contact{ID: "c-broke", Phone: "+14155550102"},
	)
	h.WaitIdle()

	if !h.Completed("c-ok") {
		t.Error("c-ok did not complete")
	}
	if h.Completed("c-broke") {
		t.Error("c-broke completed although its LLM call failed")
	}
	dls := h.DeadLetters()
	if len(dls) != 1 {
		t.Fatalf("dead letters = %+v, want c-broke only", dls)
	}
	if dl := dls[0]; dl.ContactID != "c-broke" || dl.Reason != "quota_exceeded" || dl.Provider != workertest.LLM ||
		!strings.Contains(dl.LastError, "402") {
		t.Errorf("dead letter = %+v, want c-broke, quota_exceeded, by the LLM, saying 402", dl)
	}
}

func TestATransientOutageIsRetriedUntilTheContactCompletes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	failures := 2
	h := workertest.Start(t, workertest.Options{
		Synthesize: func(context.Context, workertest.Contact, string) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			if failures > 0 {
				failures--
				return nil, workertest.ProviderError(workertest.TTS, 503)
			}
			return []byte("audio"), nil
		},
	})
	h.Enqueue(workertest.Contact{ID: "c-1", Phone: "+14155550101"})
	h.WaitIdle()
	if !h.Completed("c-1") {
		t.Errorf("c-1 did not complete after the outage; dead letters %+v", h.DeadLetters())
	}
}

func TestStopIsIdempotentAndKeepsTheResults(t *testing.T) {
	t.Parallel()
	h := workertest.Start(t, workertest.Options{})
	h.Enqueue(workertest.Contact{ID: "c-1", Phone: "+14155550101"})
	h.WaitIdle()
	h.Stop()
	h.Stop()
	if !h.Completed("c-1") {
		t.Error("c-1 not completed after the worker stopped")
	}
}
