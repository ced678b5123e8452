package chaos

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Hostile is an answer a proxy gives instead of the provider's: an outage, or a provider (or
// something pretending to be one) misbehaving. Serve gets the credential the request carried,
// for answers that echo it, and done, which ends answers that would otherwise last long.
type Hostile struct {
	Name  string
	Serve func(w http.ResponseWriter, r *http.Request, secret string, done <-chan struct{})
}

// errorBody is a provider's error document in its own shape, so the worker's error parser
// reads the message (and must redact what it echoes).
func errorBody(step, code, message string) []byte {
	var v any
	switch step {
	case StepTTS:
		v = map[string]any{"detail": map[string]string{"status": code, "message": message}}
	case StepCRM:
		v = map[string]string{"error": message, "code": code}
	default:
		v = map[string]any{"error": map[string]any{"message": message, "type": code, "param": nil, "code": code}}
	}
	b, _ := json.Marshal(v)
	return b
}

func writeJSON(w http.ResponseWriter, status int, body []byte, header ...string) {
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Outage is a provider down: 503 in its error shape, to calls and probes alike.
func Outage(step string) Hostile {
	return Hostile{Name: "503 outage", Serve: func(w http.ResponseWriter, _ *http.Request, _ string, _ <-chan struct{}) {
		writeJSON(w, http.StatusServiceUnavailable, errorBody(step, "service_unavailable", "Service temporarily unavailable"))
	}}
}

// HugeBody is a 2xx whose body is size bytes of zeros, declared in Content-Length or not
// (chunked, so only the bytes read can tell). Streaming it costs the proxy nothing; a client
// that buffers it costs the worker size bytes of memory.
func HugeBody(contentType string, size int64, declared bool) Hostile {
	name := "100 MB body (Content-Length)"
	if !declared {
		name = "100 MB body (chunked)"
	}
	return Hostile{Name: name, Serve: func(w http.ResponseWriter, r *http.Request, _ string, done <-chan struct{}) {
		w.Header().Set("Content-Type", contentType)
		if declared {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		}
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 64<<10)
		for left := size; left > 0; left -= int64(len(chunk)) {
			if _, err := w.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				return // the worker stopped reading and hung up
			}
			select {
			case <-r.Context().Done():
				return
			case <-done:
				return
			default:
			}
		}
	}}
}

// trickleLimit bounds a trickle whose client never gives up, so the suite's own wait is
// bounded too.
const trickleLimit = 2 * time.Minute

// Trickle is a 2xx that sends its (valid-looking) body one byte per second: only a deadline
// on the whole call stops it.
func Trickle(contentType string) Hostile {
	return Hostile{Name: "1 byte/s trickle", Serve: func(w http.ResponseWriter, r *http.Request, _ string, done <-chan struct{}) {
		body := bytes.Repeat([]byte(" "), int(trickleLimit/time.Second))
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
	}}
}

// InvalidJSONEchoingKey is an answer that claims to be JSON, is cut off mid-document, and
// quotes the request's credential: a parser error that prints the body leaks the key.
func InvalidJSONEchoingKey(status int) Hostile {
	return Hostile{Name: "invalid JSON echoing the key (" + strconv.Itoa(status) + ")", Serve: func(w http.ResponseWriter, _ *http.Request, secret string, _ <-chan struct{}) {
		writeJSON(w, status, []byte(`{"error":{"message":"request rejected for key `+secret+`","detail":[{"loc":`))
	}}
}

// WrongContentType is a 200 labelled text/html whose body is body (valid JSON, say, or
// something that parses as audio): an HTML page from a captive portal is not an answer.
func WrongContentType(body string) Hostile {
	return Hostile{Name: "wrong content type (text/html)", Serve: func(w http.ResponseWriter, _ *http.Request, _ string, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
	}}
}

// RetryAfterYear is a 429 asking the worker to come back in a year, in seconds or as an
// HTTP date. A worker that obeys parks the contact for good.
func RetryAfterYear(step string, asDate bool) Hostile {
	name, value := "Retry-After of a year (seconds)", strconv.Itoa(365*24*3600)
	if asDate {
		name, value = "Retry-After of a year (HTTP date)", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat)
	}
	return Hostile{Name: name, Serve: func(w http.ResponseWriter, _ *http.Request, _ string, _ <-chan struct{}) {
		writeJSON(w, http.StatusTooManyRequests, errorBody(step, "rate_limit_exceeded", "Rate limit reached; try again later."),
			"Retry-After", value)
	}}
}

// RedirectTo is a 302 to another host; see HitCounter.
func RedirectTo(target string) Hostile {
	return Hostile{Name: "302 redirect to another host", Serve: func(w http.ResponseWriter, r *http.Request, _ string, _ <-chan struct{}) {
		w.Header().Set("Location", target+r.URL.RequestURI())
		w.WriteHeader(http.StatusFound)
	}}
}

// EchoingKey is an error in the provider's shape whose message quotes the request's
// credential in full, as a careless gateway does.
func EchoingKey(step string, status int) Hostile {
	code := map[int]string{http.StatusUnauthorized: "invalid_api_key", http.StatusInternalServerError: "server_error"}[status]
	return Hostile{Name: strconv.Itoa(status) + " echoing the key", Serve: func(w http.ResponseWriter, _ *http.Request, secret string, _ <-chan struct{}) {
		writeJSON(w, status, errorBody(step, code, "Incorrect or failing API key provided: "+secret+"."))
	}}
}
