package alerttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message an SMTPServer accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	// TLS reports whether the session had switched to TLS (STARTTLS) before DATA.
	TLS bool
	// User is the authenticated user name.
	User string
}

// SMTPServer is a real SMTP server on loopback (emersion/go-smtp) offering STARTTLS with a
// self-signed certificate made for the test, and AUTH PLAIN only after STARTTLS. It keeps
// the mail it accepts. It stops when the test ends.
type SMTPServer struct {
	// Host and Port are where it listens.
	Host string
	Port int
	// RootCAs trusts its certificate.
	RootCAs *x509.CertPool

	user, pass string
	srv        *smtp.Server

	mu      sync.Mutex
	mails   []Mail
	attempt int
	failing *smtp.SMTPError
}

// SMTPOptions configures StartSMTP.
type SMTPOptions struct {
	// User and Password are the only credentials accepted.
	User, Password string
	// NoTLS starts the server without STARTTLS (to check that the client refuses it).
	NoTLS bool
}

// StartSMTP starts an SMTPServer: StartSMTPModes without modes.
func StartSMTP(t testing.TB, o SMTPOptions) *SMTPServer {
	t.Helper()
	return StartSMTPModes(t, o, SMTPModes{})
}

// Addr is host:port.
func (s *SMTPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Fail makes the server refuse every MAIL FROM with code (e.g. 451, temporary) until
// Fail(0) is called.
func (s *SMTPServer) Fail(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.failing = nil
		return
	}
	s.failing = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 3, 0}, Message: "mail system unavailable, try later"}
}

// Mails returns a copy of the accepted mail.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Attempts counts MAIL FROM commands, accepted or refused.
func (s *SMTPServer) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempt
}

// smtpSession is one SMTP session: it implements smtp.Session, and AUTH PLAIN for
// modalSession (go-smtp offers AUTH only once the session is in TLS).
type smtpSession struct {
	s    *SMTPServer
	conn *smtp.Conn
	user string
	cur  Mail
}

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	ss.s.attempt++
	failing := ss.s.failing
	ss.s.mu.Unlock()
	if failing != nil {
		return failing
	}
	if ss.s.user != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.cur = Mail{From: from, User: ss.user}
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.To = append(ss.cur.To, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOn := ss.conn.TLSConnectionState()
	m := ss.cur
	m.Data, m.TLS = data, tlsOn
	ss.s.mu.Lock()
	ss.s.mails = append(ss.s.mails, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *smtpSession) Reset()        { ss.cur = Mail{} }
func (ss *smtpSession) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost, valid for an hour, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "alert test SMTP"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
