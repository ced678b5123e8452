package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Options and the body caps.
const (
	// DefaultMaxIdleConnsPerHost is the idle keep-alive connections kept per provider host.
	DefaultMaxIdleConnsPerHost = 16
	// DefaultDialTimeout bounds establishing a TCP connection.
	DefaultDialTimeout = 5 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake.
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for response headers once the request is
	// written. It is a backstop: each call is also bounded by its context. An LLM or TTS call
	// answers only when the whole result is ready, so keep it above the step timeouts.
	DefaultResponseHeaderTimeout = 2 * time.Minute
	// DefaultIdleConnTimeout closes keep-alive connections idle this long.
	DefaultIdleConnTimeout = 90 * time.Second

	// JSONLimit caps a JSON response body (chat completions, model lists).
	JSONLimit int64 = 1 << 20
	// DefaultAudioLimit caps an audio response body. One phone call's audio is far below it:
	// the default script (LLM_MAX_TOKENS 300, about 90 seconds of speech) is about 1.4 MiB as
	// 128 kb/s MP3 and 0.7 MiB as ulaw_8000; a 10-minute 128 kb/s MP3 is about 9.2 MiB and a
	// minute of pcm_44100 about 5 MiB, so only minutes of uncompressed PCM come near it. It is
	// what one hostile body can cost: it is read at most this far (limit+1 bytes) and never
	// buffered beyond it, and MaxInFlightBytes bounds the sum over the calls in flight. Raise a
	// client's MaxAudioBytes (and Options.MaxInFlightBytes) for long PCM scripts.
	DefaultAudioLimit int64 = 16 << 20
	// DefaultMaxInFlightBytes is the process-wide budget of 2xx response bytes being read at
	// once (see Options.MaxInFlightBytes): three audio bodies at DefaultAudioLimit, far more
	// than normal calls hold (an audio body is a few MiB at most), and small enough that a
	// worker flooded with oversized bodies stays within 64 MiB of its normal peak RSS,
	// garbage collector slack included.
	DefaultMaxInFlightBytes int64 = 48 << 20
	// ErrorBodyLimit caps what is kept of a non-2xx body: enough for any error document.
	ErrorBodyLimit int64 = 64 << 10
	// DrainLimit is the most read from a body after it is no longer wanted, so the connection
	// can be reused; a longer body is abandoned with its connection.
	DrainLimit int64 = 64 << 10
)

// Product is the first word of the User-Agent.
const Product = "call-agent"

// Options tunes the shared client. Zero values take the defaults; negative values are
// rejected by New.
type Options struct {
	// Version goes into the User-Agent, "call-agent/<Version>"; default "dev". It must be a
	// single token (letters, digits and !#$%&'*+-.^_`|~).
	Version string
	// MaxIdleConnsPerHost is the keep-alive connections kept per host (default
	// DefaultMaxIdleConnsPerHost); size it to the largest provider concurrency.
	MaxIdleConnsPerHost int
	// DialTimeout, TLSHandshakeTimeout, ResponseHeaderTimeout and IdleConnTimeout tune the
	// transport; see the Default constants.
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	IdleConnTimeout       time.Duration
	// Now is the clock Retry-After dates are measured against; nil means time.Now.
	Now func() time.Time
	// MaxInFlightBytes is the budget of 2xx response body bytes all calls of this Client may
	// hold while reading (default DefaultMaxInFlightBytes). Share one Client per process, so
	// the budget is the process's. Each Do reserves what it buffers (the Content-Length when
	// declared, else each chunk before it is allocated) and releases it when it returns; a
	// call that finds no room fails with a *BudgetError (see Do). Keep it above the largest
	// limit passed to Do: a body longer than the whole budget always fails.
	MaxInFlightBytes int64
}

// Client sends provider requests over one shared transport. It is safe for concurrent use;
// build one per process and hand it to every provider client.
type Client struct {
	hc        *http.Client
	tr        *http.Transport
	userAgent string
	now       func() time.Time
	budget    *budget
}

// New returns a Client with its own tuned transport, or an error naming the bad option.
func New(o Options) (*Client, error) {
	if o.Version == "" {
		o.Version = "dev"
	}
	if !isToken(o.Version) {
		return nil, fmt.Errorf("httpx: version %q is not a single token usable in a User-Agent", o.Version)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &o.DialTimeout, DefaultDialTimeout},
		{"TLSHandshakeTimeout", &o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout},
		{"ResponseHeaderTimeout", &o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout},
		{"IdleConnTimeout", &o.IdleConnTimeout, DefaultIdleConnTimeout},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("httpx: %s is %v, must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.MaxIdleConnsPerHost < 0 {
		return nil, fmt.Errorf("httpx: MaxIdleConnsPerHost is %d, must not be negative", o.MaxIdleConnsPerHost)
	}
	if o.MaxIdleConnsPerHost == 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.MaxInFlightBytes < 0 {
		return nil, fmt.Errorf("httpx: MaxInFlightBytes is %d, must not be negative", o.MaxInFlightBytes)
	}
	if o.MaxInFlightBytes == 0 {
		o.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4 * o.MaxIdleConnsPerHost, // a few provider hosts
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       o.IdleConnTimeout,
		TLSHandshakeTimeout:   o.TLSHandshakeTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		hc: &http.Client{
			Transport: tr,
			// A redirect would replay the request, API key header included, to wherever the
			// Location points; providers do not redirect API calls, so a 3xx is an error.
			CheckRedirect: noRedirect,
		},
		tr:        tr,
		userAgent: Product + "/" + o.Version,
		now:       o.Now,
		budget:    newBudget(o.MaxInFlightBytes),
	}, nil
}

// noRedirect makes a 3xx the response instead of following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// HTTPClient returns an *http.Client on c's transport for a library that needs one (the
// oauth2 token flow): the same connections and timeouts, the User-Agent, and no redirects.
// Its bodies are not capped, so send through Do whatever you read yourself. Each call
// returns a new *http.Client: set its Timeout as the library's calls need.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: userAgentTransport{base: c.tr, ua: c.userAgent}, CheckRedirect: noRedirect}
}

// userAgentTransport sets the User-Agent on a copy of each request (a RoundTripper must not
// change the caller's request).
type userAgentTransport struct {
	base http.RoundTripper
	ua   string
}

// RoundTrip sends a copy of req carrying the User-Agent.
func (t userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("User-Agent", t.ua)
	return t.base.RoundTrip(r)
}

// UserAgent returns the User-Agent every request carries, "call-agent/<version>".
func (c *Client) UserAgent() string { return c.userAgent }

// Now returns the client's clock reading, for fault.ParseRetryAfter.
func (c *Client) Now() time.Time { return c.now() }

// InFlightBytes returns the bytes of the in-flight budget (Options.MaxInFlightBytes) held
// now by calls reading their bodies: 0 when no Do is reading.
func (c *Client) InFlightBytes() int64 { return c.budget.inUse.Load() }

// CloseIdleConnections closes the transport's idle keep-alive connections (at shutdown, and
// in tests so no connection goroutine outlives them).
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// Response is a response whose body has been read (up to its cap) and closed.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the body read: a 2xx body up to the caller's limit (nil when Do failed), any
	// other body up to ErrorBodyLimit (what arrived, when it broke off).
	Body []byte
	// Truncated is true when a non-2xx body was longer than ErrorBodyLimit and was cut.
	Truncated bool
}

// OK reports whether the status is 2xx.
func (r *Response) OK() bool { return r.Status >= 200 && r.Status <= 299 }

// ContentType returns the media type of the body, lower-cased, without parameters.
func (r *Response) ContentType() string {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

// Do sends req and reads its response. req's context bounds the whole exchange, body
// included (a body that trickles in ends with the context). The User-Agent is set here.
//
// A 2xx body is kept up to limit bytes (limit <= 0 discards it); any other body up to
// ErrorBodyLimit (longer ones are cut and marked Truncated). Memory is bounded per call: a
// declared Content-Length over the cap is refused before a byte of the body is read; one
// within it is read into a single allocation of exactly that size; a body of unknown length
// (chunked, or decompressed) is read in chunks whose total never exceeds the cap, and one
// byte past the cap ends it. 2xx bodies are also held to the Client's in-flight budget
// (Options.MaxInFlightBytes): the first reservation waits for room within req's context
// (holding nothing), later ones for a growing body do not wait. Error bodies are not counted
// (at most ErrorBodyLimit each, and their error code must not be lost to the budget).
//
// The body is closed on return. It is drained (at most DrainLimit bytes, so a short rest
// keeps the connection reusable) only when what is left is known to be that short, or when
// limit <= 0 discarded it; a body refused or cut for its size is abandoned with its
// connection, not read on.
//
// The error is nil, or one of:
//   - no response arrived: resp is nil and err is the transport error, a *url.Error whose
//     URL keeps only the scheme and host;
//   - a 2xx body longer than limit (declared or found): resp is set (Body nil) and err is a
//     *TooLargeError;
//   - a 2xx body with no room in the in-flight budget: resp is set (Body nil) and err is a
//     *BudgetError (errors.Is(err, ErrBudgetExhausted)); Failure classifies it;
//   - the body broke off: resp is set and err wraps the read error, or the context's error
//     when the context ended (also when it was cancelled while waiting for the budget).
//     Body holds what arrived of a non-2xx body, and is nil for a 2xx (a partial body is of
//     no use, and joining its chunks would cost memory).
func (c *Client) Do(req *http.Request, limit int64) (*Response, error) {
	req.Header.Set("User-Agent", c.userAgent)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, sanitize(err)
	}
	resp := &Response{Status: res.StatusCode, Header: res.Header}
	declared := res.ContentLength // -1 when unknown
	if res.Body == http.NoBody {
		declared = 0
	}
	var rb readBody
	switch {
	case !resp.OK():
		rb = read(req.Context(), res.Body, declared, ErrorBodyLimit, true, nil)
		resp.Body, resp.Truncated = rb.body, rb.over
	case limit <= 0:
		rb = readBody{drain: declared <= DrainLimit} // unknown (-1) too: try, a bounded read
	case declared > limit:
		_ = res.Body.Close() // unread: the connection is closed, not reused
		return resp, &TooLargeError{Limit: limit, Declared: declared}
	default:
		r := &reservation{b: c.budget}
		defer r.release()
		rb = read(req.Context(), res.Body, declared, limit, false, r)
		resp.Body = rb.body
	}
	closeBody(res.Body, rb.drain)
	switch err := rb.err; {
	case err == nil && rb.over && resp.OK():
		resp.Body = nil
		return resp, &TooLargeError{Limit: limit, Declared: declared}
	case err == nil:
		return resp, nil
	case errors.Is(err, ErrBudgetExhausted):
		resp.Body = nil
		return resp, err
	default:
		if cerr := req.Context().Err(); cerr != nil {
			err = cerr
		}
		return resp, fmt.Errorf("read response body: %w", err)
	}
}

// closeBody drains at most DrainLimit bytes when drain is set, so a short remainder keeps
// the connection reusable, then closes the body. Closing a body that was not read to its end
// closes its connection (HTTP/1) or resets its stream (HTTP/2): nothing more is read.
func closeBody(b io.ReadCloser, drain bool) {
	if drain {
		_, _ = io.CopyN(io.Discard, b, DrainLimit)
	}
	_ = b.Close()
}

// sanitize strips the URL in a transport error down to its scheme and host: paths and
// queries can hold tokens (webhook URLs), and user info can hold passwords.
func sanitize(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: Origin(ue.URL), Err: ue.Err}
}

// Origin returns scheme://host of raw, dropping user info, path, query and fragment, or
// "<invalid URL>" when raw does not parse.
func Origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<invalid URL>"
	}
	return u.Scheme + "://" + u.Host
}

// NewRequest builds a request bound to ctx with body (nil for none).
func NewRequest(ctx context.Context, method, url string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body) // lets http set ContentLength and GetBody
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, fmt.Errorf("build %s request to %s: %w", method, Origin(url), err)
	}
	return req, nil
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
