package crm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/callagent/resilience/internal/call"
	"github.com/callagent/resilience/internal/provider/crm"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// Recording the same call twice is harmless: the CRM sees the same Idempotency-Key and
// answers 409, which counts as success.
func ExampleClient_RecordCall() {
	var mu sync.Mutex
	seen := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		key := r.Header.Get("Idempotency-Key")
		if seen[key] {
			w.WriteHeader(http.StatusConflict)
			return
		}
		seen[key] = true
		w.WriteHeader(http.StatusCreated)
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
	fmt.Println(c.RecordCall(context.Background(), r))
	fmt.Println(c.RecordCall(context.Background(), r))
	// Without CRM_HEALTH_URL the probe does not touch the webhook.
	fmt.Println(c.Probe(context.Background()))
	// Output:
	// <nil>
	// <nil>
	// <nil>
}
