package email_test

import (
	"bytes"
	"context"
	"net/mail"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/alerttest"
	"github.com/callagent/resilience/internal/alert/email"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const password = "correct-horse-battery-staple"

func options(s *alerttest.SMTPServer) email.Options {
	return email.Options{Host: s.Host, Port: s.Port, Username: "alerts@example.com", Password: password,
		From: "alerts@example.com", To: []string{"oncall@example.com", " ops@example.com "}, RootCAs: s.RootCAs,
		Timeout: 5 * time.Second}
}

func notification() alert.Notification {
	return alert.Notification{ID: "evt_42-opened", Type: alert.TypeOpened, Kind: alert.KindBreakerOpened,
		Severity: alert.SeverityCritical, Provider: "ElevenLabs", DedupKey: "elevenlabs.down",
		Title: "Circuit breaker OPENED for ElevenLabs", Message: "Circuit breaker OPENED for ElevenLabs: calls to it fail fast",
		Time: time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC), Count: 1, Reporters: []string{"worker-1"}}
}

func TestSendsOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	srv := alerttest.StartSMTP(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: password})
	e, err := email.New(options(srv))
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := e.Notify(context.Background(), notification()); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	mails := srv.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails received", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.User != "alerts@example.com" || m.From != "alerts@example.com" ||
		strings.Join(m.To, ",") != "oncall@example.com,ops@example.com" {
		t.Errorf("envelope: TLS %v, user %q, from %q, to %v", m.TLS, m.User, m.From, m.To)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("the mail does not parse: %v", err)
	}
	if got := msg.Header.Get("Subject"); got != "[CRITICAL] Circuit breaker OPENED for ElevenLabs" {
		t.Errorf("Subject = %q", got)
	}
	if got := msg.Header.Get("Message-Id"); got != "<evt_42-opened@callagent.alerts>" {
		t.Errorf("Message-ID = %q, want one derived from the notification id", got)
	}
	if msg.Header.Get("X-Alert-Dedup-Key") != "elevenlabs.down" {
		t.Errorf("headers: %v", msg.Header)
	}
	body := string(m.Data)
	for _, want := range []string{"calls to it fail fast", "Reported by: worker-1", "Incident: elevenlabs.down"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	alerttest.AssertNoSecrets(t, "mail", m.Data, password)
}

func TestRefusesAServerWithoutSTARTTLS(t *testing.T) {
	t.Parallel()
	srv := alerttest.StartSMTP(t, alerttest.SMTPOptions{NoTLS: true})
	e, err := email.New(options(srv))
	if err != nil {
		t.Fatal(err)
	}
	retry, err := e.Notify(context.Background(), notification())
	if err == nil || !retry || fault.KindOf(err) != fault.KindConfiguration || !strings.Contains(strings.ToLower(err.Error()), "starttls") {
		t.Fatalf("Notify to a server without STARTTLS = %v, %v (kind %s)", retry, err, fault.KindOf(err))
	}
	if srv.Attempts() != 0 || len(srv.Mails()) != 0 {
		t.Errorf("the message went out in clear text: %d attempts", srv.Attempts())
	}
}

func TestRefusesAnUntrustedCertificate(t *testing.T) {
	t.Parallel()
	srv := alerttest.StartSMTP(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: password})
	o := options(srv)
	o.RootCAs = nil // the system roots do not know the test certificate
	e, err := email.New(o)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := e.Notify(context.Background(), notification())
	if err == nil || !retry || fault.KindOf(err) != fault.KindConfiguration {
		t.Fatalf("Notify with an untrusted certificate = %v, %v", retry, err)
	}
	if len(srv.Mails()) != 0 {
		t.Error("mail sent to an unverified server")
	}
}

func TestFailuresAreClassified(t *testing.T) {
	t.Parallel()
	srv := alerttest.StartSMTP(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: password})

	o := options(srv)
	o.Password = secret.Secret("wrong-" + password)
	e, err := email.New(o)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := e.Notify(context.Background(), notification())
	if err == nil || !retry || fault.KindOf(err) != fault.KindAuthentication {
		t.Errorf("wrong password: %v, %v (kind %s)", retry, err, fault.KindOf(err))
	}
	if err != nil && strings.Contains(err.Error(), password) {
		t.Errorf("the error shows the password: %v", err)
	}

	e, err = email.New(options(srv))
	if err != nil {
		t.Fatal(err)
	}
	srv.Fail(451)
	retry, err = e.Notify(context.Background(), notification())
	if err == nil || !retry || !fault.IsTransient(err) {
		t.Errorf("451: %v, %v", retry, err)
	}
	srv.Fail(554)
	retry, err = e.Notify(context.Background(), notification())
	if err == nil || retry || fault.KindOf(err) != fault.KindInvalidPayload {
		t.Errorf("554: %v, %v (kind %s)", retry, err, fault.KindOf(err))
	}
	srv.Fail(0)
	if _, err := e.Notify(context.Background(), notification()); err != nil || len(srv.Mails()) != 1 {
		t.Errorf("after recovery: %v, %d mails", err, len(srv.Mails()))
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for want, o := range map[string]email.Options{
		"Host is required":                {From: "a@b.c", To: []string{"d@e.f"}},
		"Port must be":                    {Host: "h", Port: 70000, From: "a@b.c", To: []string{"d@e.f"}},
		"From \"nobody\" is not":          {Host: "h", From: "nobody", To: []string{"d@e.f"}},
		"To needs at least one address":   {Host: "h", From: "a@b.c", To: []string{" "}},
		"To \"not an address\" is not an": {Host: "h", From: "a@b.c", To: []string{"not an address"}},
	} {
		if _, err := email.New(o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: New = %v", want, err)
		}
	}
}

func TestSendsOverImplicitTLS(t *testing.T) {
	t.Parallel()
	srv := alerttest.StartSMTPModes(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: password},
		alerttest.SMTPModes{ImplicitTLS: true})
	o := options(srv)
	o.ImplicitTLS = true // the test port is random; in production port 465 implies it
	e, err := email.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if retry, err := e.Notify(context.Background(), notification()); err != nil {
		t.Fatalf("Notify over implicit TLS = %v, %v", retry, err)
	}
	if m := srv.Mails(); len(m) != 1 || !m[0].TLS || m[0].User != "alerts@example.com" {
		t.Fatalf("mails: %+v", m)
	}
}

func TestImplicitTLSOnAStartTLSPortIsAConfigurationError(t *testing.T) {
	t.Parallel()
	srv := alerttest.StartSMTP(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: password})
	o := options(srv)
	o.ImplicitTLS = true
	e, err := email.New(o)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := e.Notify(context.Background(), notification())
	if err == nil || !retry || fault.KindOf(err) != fault.KindConfiguration {
		t.Fatalf("Notify with TLS to a STARTTLS port = %v, %v (kind %s)", retry, err, fault.KindOf(err))
	}
	if srv.Attempts() != 0 {
		t.Errorf("the session went on in clear text: %d attempts", srv.Attempts())
	}
}

// Office 365 offers AUTH LOGIN and XOAUTH2, no PLAIN.
func TestAuthenticatesWithLoginWhenThatIsAllTheServerOffers(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{false, true} {
		srv := alerttest.StartSMTPModes(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: password},
			alerttest.SMTPModes{ImplicitTLS: implicit, AuthMechanisms: []string{"LOGIN", "XOAUTH2"}})
		o := options(srv)
		o.ImplicitTLS = implicit
		e, err := email.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if retry, err := e.Notify(context.Background(), notification()); err != nil {
			t.Fatalf("implicit TLS %v: Notify = %v, %v", implicit, retry, err)
		}
		if m := srv.Mails(); len(m) != 1 || !m[0].TLS || m[0].User != "alerts@example.com" {
			t.Fatalf("implicit TLS %v: mails %+v", implicit, m)
		}
		alerttest.AssertNoSecrets(t, "mail", srv.Mails()[0].Data, password)

		o.Password = secret.Secret("wrong-" + password)
		e, err = email.New(o)
		if err != nil {
			t.Fatal(err)
		}
		retry, err := e.Notify(context.Background(), notification())
		if err == nil || !retry || fault.KindOf(err) != fault.KindAuthentication || strings.Contains(err.Error(), password) {
			t.Errorf("implicit TLS %v, LOGIN with a wrong password: %v, %v (kind %s)", implicit, retry, err, fault.KindOf(err))
		}
	}
}

func TestAuthFailuresAreClassified(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		modes alerttest.SMTPModes
		want  fault.Kind
		retry bool
	}{
		"Office 365, SMTP AUTH disabled for the tenant": {alerttest.SMTPModes{AuthMechanisms: []string{"LOGIN", "XOAUTH2"},
			RefuseAuth: &alerttest.SMTPReply{Code: 535, Enhanced: [3]int{5, 7, 139}, Message: "Authentication unsuccessful, " +
				"SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."}},
			fault.KindConfiguration, true},
		"Office 365, bad credentials": {alerttest.SMTPModes{AuthMechanisms: []string{"LOGIN"},
			RefuseAuth: &alerttest.SMTPReply{Code: 535, Enhanced: [3]int{5, 7, 3}, Message: "Authentication unsuccessful"}},
			fault.KindAuthentication, true},
		"AUTH extension not supported": {alerttest.SMTPModes{
			RefuseAuth: &alerttest.SMTPReply{Code: 502, Enhanced: [3]int{5, 5, 1}, Message: "SMTP AUTH extension not supported"}},
			fault.KindConfiguration, true},
		"AUTH mechanism refused": {alerttest.SMTPModes{
			RefuseAuth: &alerttest.SMTPReply{Code: 504, Enhanced: [3]int{5, 7, 4}, Message: "Unrecognized authentication type"}},
			fault.KindConfiguration, true},
		"temporary AUTH failure": {alerttest.SMTPModes{
			RefuseAuth: &alerttest.SMTPReply{Code: 454, Enhanced: [3]int{4, 7, 0}, Message: "Temporary authentication failure"}},
			fault.KindUnavailable, true},
		"no AUTH offered": {alerttest.SMTPModes{AuthMechanisms: []string{}}, fault.KindConfiguration, true},
		"only a token mechanism offered": {alerttest.SMTPModes{AuthMechanisms: []string{"XOAUTH2"}},
			fault.KindConfiguration, true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := alerttest.StartSMTPModes(t, alerttest.SMTPOptions{User: "alerts@example.com", Password: password}, tc.modes)
			e, err := email.New(options(srv))
			if err != nil {
				t.Fatal(err)
			}
			retry, err := e.Notify(context.Background(), notification())
			if err == nil || retry != tc.retry || fault.KindOf(err) != tc.want {
				t.Fatalf("Notify = %v, %v (kind %s), want retry %v, kind %s", retry, err, fault.KindOf(err), tc.retry, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if srv.Attempts() != 0 || len(srv.Mails()) != 0 {
				t.Errorf("sent without authenticating: %d attempts", srv.Attempts())
			}
		})
	}
}
