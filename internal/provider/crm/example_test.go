package crm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/crm"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// A 409 means the CRM is still processing a request with the same Idempotency-Key: the call
// fails transiently, and the retry loop posts the same record again after the Retry-After.
// A repeat of a completed record gets the first answer replayed, a 2xx: success.
func ExampleClient_RecordCall() {
	var mu sync.Mutex
	requests := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		key := r.Header.Get("Idempotency-Key")
		requests[key]++
		if requests[key] == 1 { // pretend an earlier request with this key is still running
			w.Header().Set("Retry-After", "2")
			w.Header().Set("X-Request-Id", "req_1")
			w.WriteHeader(http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusCreated) // recorded, or replayed for a repeat
	}))
	defer hook.Close()
	hc, err := httpx.New(httpx.Options{Version: "v1.0.0"})
	if err != nil {
		panic(err)
	}
	defer hc.CloseIdleConnections()

	c, err := crm.New(crm.Options{WebhookURL: hook.URL + "/hooks/calls", HTTP: hc})
	if err != nil {
		panic(err)
	}
	r := call.CallResult{ContactID: "c-42", Status: "completed", Script: "Hello Ada!",
		Providers: map[string]string{"llm": "LLM", "tts": "ElevenLabs"}, CompletedAt: time.Now()}
	err = c.RecordCall(context.Background(), r)
	fmt.Println(err, fault.KindOf(err), fault.IsTransient(err), fault.RetryAfterOf(err))
	fmt.Println(c.RecordCall(context.Background(), r)) // the retry
	fmt.Println(c.RecordCall(context.Background(), r)) // a redelivery: replayed
	// Without CRM_HEALTH_URL the probe does not touch the webhook.
	fmt.Println(c.Probe(context.Background()))
	// Output:
	// CRM: service unavailable (HTTP 409) (request_id req_1) service_unavailable true 2s
	// <nil>
	// <nil>
	// <nil>
}
