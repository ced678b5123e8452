package alert_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/fault"
)

func TestCheckHTTPTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range alerttest.RetryCases() {
		retry, err := alert.CheckHTTP("Test", alert.Response{Status: c.Status, Header: c.Header, Body: []byte("nope")}, "", 0, now)
		c.Check(t, retry, err)
		if err != nil && !strings.HasPrefix(err.Error(), "Test answered HTTP ") {
			t.Errorf("%s: message %q", c.Name, err)
		}
	}
}

func TestCheckHTTPDetailIsRedactedAndBounded(t *testing.T) {
	t.Parallel()
	body := "bad token bot123456789:AAabcdefghijklmnopqrstuvwxyz0123456 for +14155550123 " + strings.Repeat("x", 1000)
	_, err := alert.CheckHTTP("Test", alert.Response{Status: 400, Header: http.Header{}, Body: []byte(body)}, "", 0, time.Now())
	msg := err.Error()
	if strings.Contains(msg, "AAabcdefghij") || strings.Contains(msg, "4155550123") {
		t.Errorf("error leaks: %q", msg)
	}
	if len([]rune(msg)) > 400 {
		t.Errorf("error is %d characters long", len([]rune(msg)))
	}
	_, err = alert.CheckHTTP("Test", alert.Response{Status: 429, Header: http.Header{}}, "slow down", 30*time.Second, time.Now())
	if fault.RetryAfterOf(err) != 30*time.Second {
		t.Errorf("retry after from the body: %s", fault.RetryAfterOf(err))
	}
}

func TestPostJSONErrorsHideThePath(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens any more
	const token = "123456789:secret-token-in-the-path"
	_, err := alert.PostJSON(context.Background(), &http.Client{}, base+"/bot"+token+"/sendMessage?key=abc", nil, []byte("{}"))
	if err == nil {
		t.Fatal("PostJSON to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "key=abc") {
		t.Errorf("error leaks the path: %v", err)
	}
	retry, cerr := alert.TransportError("Test", err)
	if !retry || fault.KindOf(cerr) != fault.KindNetwork {
		t.Errorf("TransportError = %v, %v (kind %s)", retry, cerr, fault.KindOf(cerr))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = alert.PostJSON(ctx, &http.Client{}, base, nil, nil)
	if retry, cerr := alert.TransportError("Test", err); retry || !errors.Is(cerr, context.Canceled) {
		t.Errorf("a cancelled post: retry %v, %v", retry, cerr)
	}
	if got := alert.SafeURL("https://user:pw@hooks.example.com/services/T/B/X?x=1"); got != "https://hooks.example.com" {
		t.Errorf("SafeURL = %q", got)
	}
}
