// Package faulttest holds the shared table of provider failures and the kind each must be
// classified as. The fault package tests Classify against the Facts of every row; each HTTP
// client serves Status, Header and Body from an httptest server and checks that what it
// reports classifies the same way, so the clients and the classifier cannot drift apart.
package faulttest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/callagent/resilience/internal/fault"
)

// Provider display names used in the table.
const (
	ElevenLabs = "ElevenLabs"
	LLM        = "LLM"
)

// Case is one provider failure. Rows with Status 0 are transport failures that no HTTP server
// can serve (Facts.Err holds the error); the others are complete responses.
type Case struct {
	// Name identifies the row in test output.
	Name string
	// Provider is ElevenLabs, LLM (an OpenAI-compatible API) or "" for a row that holds for
	// every provider (status only, or transport).
	Provider string
	// Status, Header and Body are the response as the provider sends it.
	Status int
	Header http.Header
	Body   string
	// Facts is what a correct client extracts from the response.
	Facts fault.Facts
	// Want is the kind the response must be classified as.
	Want fault.Kind
}

// For reports whether the row applies to provider (rows with no Provider apply to all).
func (c Case) For(provider string) bool { return c.Provider == "" || c.Provider == provider }

// ClassificationCases returns the table, freshly built so callers may modify it.
func ClassificationCases() []Case {
	generic := func(name string, status int, want fault.Kind) Case {
		return Case{Name: "any/" + name, Status: status, Header: http.Header{},
			Facts: fault.Facts{Status: status}, Want: want}
	}
	transport := func(name string, err error, want fault.Kind) Case {
		return Case{Name: "transport/" + name, Facts: fault.Facts{Err: err}, Want: want}
	}

	cases := []Case{
		// Any provider, status only.
		generic("403", 403, fault.KindAuthentication),
		generic("408", 408, fault.KindTimeout),
		generic("418 other 4xx", 418, fault.KindInvalidPayload),
		generic("429 without code", 429, fault.KindRateLimited),
		generic("503", 503, fault.KindUnavailable),
		generic("504", 504, fault.KindUnavailable),
		generic("302 unexpected redirect", 302, fault.KindBadResponse),

		// Transport failures: no response.
		transport("context deadline", context.DeadlineExceeded, fault.KindTimeout),
		transport("client timeout", &url.Error{Op: "Post", URL: "https://api.example/v1", Err: timeoutError{}}, fault.KindTimeout),
		transport("connection refused", &url.Error{Op: "Post", URL: "https://api.example/v1",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}, fault.KindNetwork),
		transport("connection reset", syscall.ECONNRESET, fault.KindNetwork),
		transport("unexpected EOF", io.ErrUnexpectedEOF, fault.KindNetwork),
		transport("dns", &net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}, fault.KindNetwork),
		transport("unclassified error", errors.New("boom"), fault.KindUnknown),
		transport("nothing at all", nil, fault.KindUnknown),
	}
	cases = append(cases, ElevenLabsCases()...)
	return append(cases, LLMCases()...)
}

// ErrEmptyBody is the decoding error the table's unusable-2xx rows carry.
var ErrEmptyBody = errors.New("response body has no usable content")

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func withHeader(h http.Header, k, v string) http.Header {
	h.Set(k, v)
	return h
}
