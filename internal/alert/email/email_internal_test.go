package email

import "testing"

// Port 465 is SMTPS whatever ImplicitTLS says; ImplicitTLS without a port means 465. The
// tests against a server cannot use port 465, so the choice itself is checked here.
func TestImplicitTLSFollowsThePort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		port     int
		implicit bool
		want     bool
	}{
		{0, false, false},
		{587, false, false},
		{25, false, false},
		{465, false, true},
		{465, true, true},
		{0, true, true},
		{2465, true, true},
	} {
		e, err := New(Options{Host: "smtp.example.com", Port: tc.port, ImplicitTLS: tc.implicit, From: "a@example.com", To: []string{"b@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		if e.implicitTLS != tc.want {
			t.Errorf("port %d, ImplicitTLS %v: implicit TLS = %v, want %v", tc.port, tc.implicit, e.implicitTLS, tc.want)
		}
		if tc.port == 0 && e.client.ServerAddr() != map[bool]string{false: "smtp.example.com:587", true: "smtp.example.com:465"}[tc.implicit] {
			t.Errorf("port 0, ImplicitTLS %v: server %s", tc.implicit, e.client.ServerAddr())
		}
	}
}
