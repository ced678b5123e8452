package providertest

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/fault/faulttest"
	"github.com/callagent/resilience/internal/provider/httpx"
)

// What the tests of the provider clients share besides the fakes.

// HTTPClient is an httpx client whose User-Agent is call-agent/<version> and whose idle
// connections are closed when tb ends.
func HTTPClient(tb testing.TB, version string) *httpx.Client {
	tb.Helper()
	hc, err := httpx.New(httpx.Options{Version: version})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(hc.CloseIdleConnections)
	return hc
}

// ServiceError returns err as a *fault.ServiceError, failing the test when it is not one.
func ServiceError(tb testing.TB, err error) *fault.ServiceError {
	tb.Helper()
	var se *fault.ServiceError
	if !errors.As(err, &se) {
		tb.Fatalf("err = %v (%T), want a *fault.ServiceError", err, err)
	}
	return se
}

// CheckOutage checks that probe reports the provider unavailable while s answers every
// request with outage, and succeeds again once the outage ends.
func CheckOutage(tb testing.TB, s *Server, outage Reply, probe func(context.Context) error) {
	tb.Helper()
	s.SetFault(outage)
	if se := ServiceError(tb, probe(context.Background())); se.Kind != fault.KindUnavailable {
		tb.Errorf("probe during an outage: %v", se.Kind)
	}
	s.ClearFault()
	if err := probe(context.Background()); err != nil {
		tb.Errorf("probe after recovery: %v", err)
	}
}

// ClosedAddr is a loopback address (host:port) where nothing listens: a connection to it is
// refused.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// RunTable runs f, each in a parallel subtest named after the row, for the rows of
// faulttest.ClassificationCases that apply to provider and that a server can serve (the rows
// with a status), with the Reply that serves the row. It returns the rows' names.
func RunTable(t *testing.T, provider string, f func(t *testing.T, tc faulttest.Case, rep Reply)) []string {
	t.Helper()
	var names []string
	for _, tc := range faulttest.ClassificationCases() {
		if !tc.For(provider) || tc.Status == 0 {
			continue
		}
		names = append(names, tc.Name)
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			f(t, tc, Reply{Status: tc.Status, Header: tc.Header, Body: tc.Body})
		})
	}
	return names
}
