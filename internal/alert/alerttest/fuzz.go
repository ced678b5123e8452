package alerttest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/providertest"
)

// FuzzWindow is the shortest piece of a secret that counts as a leak.
const FuzzWindow = 12

// AnswerFuzzOptions describe the channel a FuzzNotifyAnswer target sends with.
type AnswerFuzzOptions struct {
	// Channel is the channel's name, the Provider of its errors.
	Channel string
	// ContentType is the answers' Content-Type; empty sends none.
	ContentType string
	// Marks, when set, gives what replaces the marks \x01, \x02, … in an answer's body (mark
	// i+1 by element i), from the request being answered and its body: the request URI, a
	// header, a credential, as a service quoting the request or its own configuration would.
	Marks func(r *http.Request, body []byte) []string
	// MaxErrorLen bounds the error message, in characters.
	MaxErrorLen int
	// Secrets must never show in the error's message or code, whole or as any piece of
	// FuzzWindow bytes.
	Secrets []string
	// Retryable is the rule a failure's retry follows: alert.RetryableKind.
	Retryable func(fault.Kind) bool
	// FailedOKStatus, when set, is the status a failure may report for a 2xx answer whose body
	// says it failed (Telegram's ok:false is a 502), besides the answer's own.
	FailedOKStatus int
}

// AnswerFuzz is the harness of the HTTP channels' FuzzNotifyAnswer targets: a real HTTP
// server answering every request with the fuzz input's answer, and the invariants a channel
// keeps whatever it is answered (see Check). The target builds its channel for URL and
// checks what is particular to its service on the failure Check returns.
type AnswerFuzz struct {
	// URL is the server's.
	URL string

	o     AnswerFuzzOptions
	reply atomic.Pointer[fuzzReply]
}

type fuzzReply struct {
	status           int
	body, retryAfter string
}

// NewAnswerFuzz starts the server, closed when the fuzz test ends.
func NewAnswerFuzz(f *testing.F, o AnswerFuzzOptions) *AnswerFuzz {
	h := &AnswerFuzz{o: o}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	f.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

func (h *AnswerFuzz) serve(w http.ResponseWriter, r *http.Request) {
	req, _ := io.ReadAll(r.Body)
	rep := h.reply.Load()
	if providertest.ValidHeaderValue(rep.retryAfter) {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if h.o.ContentType != "" {
		w.Header().Set("Content-Type", h.o.ContentType)
	}
	w.WriteHeader(rep.status)
	body := rep.body
	if h.o.Marks != nil {
		var oldnew []string
		for i, s := range h.o.Marks(r, req) {
			oldnew = append(oldnew, string(rune(i+1)), s)
		}
		body = strings.NewReplacer(oldnew...).Replace(body)
	}
	_, _ = io.WriteString(w, body)
}

// FuzzStatus maps a fuzzed status to an answer's: itself from 200 to 599, else one of those
// (every answer but 1xx).
func FuzzStatus(status int) int {
	if status >= 200 && status <= 599 {
		return status
	}
	if status < 0 {
		if status == -status { // math.MinInt
			return 200
		}
		status = -status
	}
	return 200 + status%400
}

// UnescapeMarks puts back the marks \x01 and \x02 that json.Marshal escaped in a body built
// from fuzzed fields, so that the server sees them.
func UnescapeMarks(body string) string {
	return strings.NewReplacer(`\u0001`, "\x01", `\u0002`, "\x02").Replace(body)
}

// Check has the server answer status (from FuzzStatus), body and, when a server can send it,
// the Retry-After header retryAfter; then it calls notify, which sends a notification with
// the channel, and checks what it returns:
//   - success only for a 2xx, and never with retry;
//   - a failure is a *fault.ServiceError for the channel with the answer's status (or
//     FailedOKStatus for a 2xx), a wait that is not negative, and retry is what Retryable
//     says of its kind;
//   - the error's message has at most MaxErrorLen characters;
//   - no secret shows in the error's message or code, whole or in part.
//
// It returns the failure, nil on success, for the target's own checks.
func (h *AnswerFuzz) Check(t *testing.T, status int, body, retryAfter string,
	notify func(context.Context) (bool, error)) *AnswerFailure {
	t.Helper()
	h.reply.Store(&fuzzReply{status: status, body: body, retryAfter: retryAfter})
	retry, err := notify(context.Background())
	if err == nil {
		if status/100 != 2 || retry {
			t.Fatalf("HTTP %d taken as success (retry %v)", status, retry)
		}
		return nil
	}
	var se *fault.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("%v (%T) is not a *fault.ServiceError", err, err)
	}
	failedOK := h.o.FailedOKStatus != 0 && status/100 == 2 && se.Status == h.o.FailedOKStatus
	if se.Provider != h.o.Channel || (se.Status != status && !failedOK) {
		t.Fatalf("provider %q status %d, want %s %d", se.Provider, se.Status, h.o.Channel, status)
	}
	if retry != h.o.Retryable(fault.KindOf(err)) {
		t.Fatalf("retry = %v for kind %v", retry, fault.KindOf(err))
	}
	if se.RetryAfter < 0 {
		t.Fatalf("negative wait %v", se.RetryAfter)
	}
	text := err.Error()
	if n := utf8.RuneCountInString(text); n > h.o.MaxErrorLen {
		t.Fatalf("error text of %d characters, more than %d: %.300q", n, h.o.MaxErrorLen, text)
	}
	for _, sec := range h.o.Secrets {
		for i := 0; i+FuzzWindow <= len(sec); i++ {
			if w := sec[i : i+FuzzWindow]; strings.Contains(text, w) || strings.Contains(se.Code, w) {
				t.Fatalf("error %q (code %q) shows %q of the credential %q", text, se.Code, w, sec)
			}
		}
	}
	return &AnswerFailure{Err: err, Service: se, Retry: retry}
}

// AnswerFailure is what Notify returned for an answer it took as a failure.
type AnswerFailure struct {
	Err     error
	Service *fault.ServiceError // Err's
	Retry   bool
}
