package providertest

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/callagent/resilience/internal/call"
)

// CRMOptions configures the fake CRM webhook.
type CRMOptions struct {
	// Path is the webhook's path; default "/hooks/calls".
	Path string
	// HealthPath is the health endpoint's path; default "/health".
	HealthPath string
	// Token, when set, is the bearer token the webhook requires.
	Token string
}

// CRM is a fake CRM webhook: POST <Path> with a call.CallResult and an Idempotency-Key equal
// to its contact_id. The first record of a key gets 201; a repeat gets the same 201 again
// and is not stored twice, as an idempotent API replays its first answer (a 409 there means
// a request with the key is still in progress, which a test scripts with Script). GET
// <HealthPath> answers 200.
type CRM struct {
	*Server
	opts CRMOptions

	mu       sync.Mutex
	recorded []call.CallResult
}

// NewCRM starts a fake CRM for the test's lifetime.
func NewCRM(t testing.TB, o CRMOptions) *CRM {
	t.Helper()
	if o.Path == "" {
		o.Path = "/hooks/calls"
	}
	if o.HealthPath == "" {
		o.HealthPath = "/health"
	}
	c := &CRM{opts: o}
	c.Server = newServer(t, c.serve)
	return c
}

// WebhookURL is the URL to set as CRM_WEBHOOK_URL.
func (c *CRM) WebhookURL() string { return c.URL() + c.opts.Path }

// HealthURL is the URL to set as CRM_HEALTH_URL.
func (c *CRM) HealthURL() string { return c.URL() + c.opts.HealthPath }

// Recorded returns the call results recorded so far (each contact once), in order.
func (c *CRM) Recorded() []call.CallResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recorded)
}

func (c *CRM) serve(s *Server, w http.ResponseWriter, r *http.Request, body []byte) {
	probe := r.Method == http.MethodGet && r.URL.Path == c.opts.HealthPath
	s.record(r, body, probe)
	s.checkCommon(r, body)
	if !probe && (r.Method != http.MethodPost || r.URL.Path != c.opts.Path) {
		s.violation(r, "no such CRM endpoint")
		s.write(w, r, JSONReply(http.StatusNotFound, `{"error":"not found"}`))
		return
	}
	if c.opts.Token != "" && r.Header.Get("Authorization") != "Bearer "+c.opts.Token {
		s.write(w, r, JSONReply(http.StatusUnauthorized, `{"error":"unauthorized"}`))
		return
	}
	if probe {
		if rep, ok := s.scripted(true); ok {
			s.write(w, r, rep)
			return
		}
		s.write(w, r, JSONReply(http.StatusOK, `{"status":"ok"}`))
		return
	}
	if _, err := jsonFields(body); err != nil {
		s.violation(r, "%v", err)
		s.write(w, r, JSONReply(http.StatusBadRequest, `{"error":"invalid JSON"}`))
		return
	}
	var res call.CallResult
	if err := strict(body, &res); err != nil {
		s.violation(r, "body: %v", err)
		s.write(w, r, JSONReply(http.StatusBadRequest, `{"error":"invalid call result"}`))
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || key != res.ContactID || strings.TrimSpace(res.ContactID) == "" {
		s.violation(r, "Idempotency-Key %q does not equal contact_id %q", key, res.ContactID)
		s.write(w, r, JSONReply(http.StatusBadRequest, `{"error":"Idempotency-Key must equal contact_id"}`))
		return
	}
	if rep, ok := s.scripted(false); ok {
		s.write(w, r, rep)
		return
	}
	c.mu.Lock()
	dup := slices.ContainsFunc(c.recorded, func(x call.CallResult) bool { return x.ContactID == key })
	if !dup {
		c.recorded = append(c.recorded, res)
	}
	c.mu.Unlock()
	s.write(w, r, JSONReply(http.StatusCreated, `{"id":"`+key+`","status":"recorded"}`))
}
