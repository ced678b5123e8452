package alerttest

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPModes are server behaviours beyond SMTPOptions, for the servers a client meets in
// production besides a STARTTLS + AUTH PLAIN one: SMTPS on port 465, Office 365's AUTH LOGIN,
// a tenant where SMTP AUTH is disabled.
type SMTPModes struct {
	// ImplicitTLS serves TLS from the first byte (SMTPS) and offers no STARTTLS. It always
	// has a certificate: SMTPOptions.NoTLS is ignored.
	ImplicitTLS bool
	// AuthMechanisms are the SASL mechanisms advertised once the session is in TLS. Nil
	// means PLAIN only (as StartSMTP); an empty non-nil slice advertises no AUTH at all.
	// PLAIN and LOGIN are implemented; any other is advertised and refused if tried.
	AuthMechanisms []string
	// RefuseAuth, when set, answers every AUTH of an advertised mechanism with this reply,
	// whatever the credentials.
	RefuseAuth *SMTPReply
}

// SMTPReply is an SMTP reply.
type SMTPReply struct {
	// Code is the reply code, e.g. 535.
	Code int
	// Enhanced is the RFC 3463 enhanced status code, e.g. {5, 7, 139}; zero sends X.0.0.
	Enhanced [3]int
	// Message is the text after the codes.
	Message string
}

// StartSMTPModes starts an SMTPServer like StartSMTP, with the behaviours in m.
func StartSMTPModes(t testing.TB, o SMTPOptions, m SMTPModes) *SMTPServer {
	t.Helper()
	s := &SMTPServer{user: o.User, pass: o.Password}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &modalSession{smtpSession: smtpSession{s: s, conn: c}, modes: m}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 10
	var tlsConf *tls.Config
	if !o.NoTLS || m.ImplicitTLS {
		cert, pool, err := selfSigned()
		if err != nil {
			t.Fatalf("make a certificate for the test SMTP server: %v", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.RootCAs = pool
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the test SMTP server: %v", err)
	}
	s.Host, s.Port, s.srv = "127.0.0.1", l.Addr().(*net.TCPAddr).Port, srv
	if m.ImplicitTLS {
		// srv.TLSConfig stays nil: go-smtp then offers no STARTTLS, and AUTH is allowed
		// because the connection is already TLS.
		l = tls.NewListener(l, tlsConf)
	} else {
		srv.TLSConfig = tlsConf
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// modalSession is an smtpSession whose AUTH follows SMTPModes.
type modalSession struct {
	smtpSession
	modes SMTPModes
}

func (ms *modalSession) AuthMechanisms() []string {
	if ms.modes.AuthMechanisms == nil {
		return []string{sasl.Plain}
	}
	return ms.modes.AuthMechanisms
}

func (ms *modalSession) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(ms.AuthMechanisms(), mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if r := ms.modes.RefuseAuth; r != nil {
		return nil, &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Message}
	}
	switch mech {
	case sasl.Plain:
		return ms.smtpSession.Auth(mech)
	case sasl.Login:
		return &loginServer{check: func(user, pass string) error {
			if user != ms.s.user || pass != ms.s.pass {
				return smtp.ErrAuthFailed
			}
			ms.user = user
			return nil
		}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of SASL LOGIN (draft-murchison-sasl-login), which go-sasl
// no longer implements: "Username:" then "Password:" challenges, or the user name as the
// initial response.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		if len(resp) > 0 { // AUTH LOGIN <user>
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		l.step = 1
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, false, errors.New("unexpected LOGIN response")
}
