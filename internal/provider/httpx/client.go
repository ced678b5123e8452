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
	// DefaultAudioLimit caps an audio response body; a minute of 128 kb/s MP3 is about 1 MB.
	DefaultAudioLimit int64 = 50 << 20
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
}

// Client sends provider requests over one shared transport. It is safe for concurrent use;
// build one per process and hand it to every provider client.
type Client struct {
	hc        *http.Client
	tr        *http.Transport
	userAgent string
	now       func() time.Time
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

// CloseIdleConnections closes the transport's idle keep-alive connections (at shutdown, and
// in tests so no connection goroutine outlives them).
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// Response is a response whose body has been read (up to its cap) and closed.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the body read: a 2xx body up to the caller's limit, any other body up to
	// ErrorBodyLimit.
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
// included. The User-Agent is set here.
//
// A 2xx body is kept up to limit bytes (limit <= 0 discards it); any other body up to
// ErrorBodyLimit (longer ones are cut and marked Truncated). The body is always drained (at
// most DrainLimit more bytes) and closed.
//
// The error is nil, or one of:
//   - no response arrived: resp is nil and err is the transport error, a *url.Error whose
//     URL keeps only the scheme and host;
//   - a 2xx body longer than limit: resp is set (Body nil) and err is a *TooLargeError;
//   - the body broke off: resp is set (Body holds what arrived) and err wraps the read
//     error, or the context's error when the context ended.
func (c *Client) Do(req *http.Request, limit int64) (*Response, error) {
	req.Header.Set("User-Agent", c.userAgent)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, sanitize(err)
	}
	defer closeBody(res.Body)
	resp := &Response{Status: res.StatusCode, Header: res.Header}
	switch {
	case !resp.OK():
		resp.Body, resp.Truncated, err = readCapped(res.Body, ErrorBodyLimit)
	case limit > 0:
		var over bool
		resp.Body, over, err = readCapped(res.Body, limit)
		if err == nil && over {
			resp.Body = nil
			return resp, &TooLargeError{Limit: limit}
		}
	}
	if err != nil {
		if cerr := req.Context().Err(); cerr != nil {
			err = cerr
		}
		return resp, fmt.Errorf("read response body: %w", err)
	}
	return resp, nil
}

// readCapped reads up to limit bytes; over is true when the body had more.
func readCapped(r io.Reader, limit int64) (body []byte, over bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(body)) > limit {
		return body[:limit], true, err
	}
	return body, false, err
}

// closeBody drains at most DrainLimit bytes, so a short remainder keeps the connection
// reusable, then closes the body.
func closeBody(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, DrainLimit)
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
