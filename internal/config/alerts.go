package config

import (
	"strings"

	"github.com/callagent/resilience/internal/alert"
	"github.com/callagent/resilience/internal/alert/channels"
	"github.com/callagent/resilience/internal/alert/email"
	"github.com/callagent/resilience/internal/alert/pagerduty"
	"github.com/callagent/resilience/internal/alert/slack"
	"github.com/callagent/resilience/internal/alert/telegram"
	"github.com/callagent/resilience/internal/alert/webhook"
)

// AlertTopology is the alert stream, consumer and bucket c names.
func (c Config) AlertTopology() alert.Topology {
	return alert.Topology{
		Stream: c.Alerts.Stream, SubjectPrefix: c.Alerts.SubjectPrefix, Consumer: c.Alerts.Consumer,
		Bucket: c.Alerts.IncidentsBucket, MaxAge: c.Alerts.MaxAge, Replicas: c.Topology.Replicas,
	}
}

// AlertChannels are the alert channels' settings c gives (the worker adds the HTTP client).
func (c Config) AlertChannels() channels.Settings {
	a := c.Alerts
	sev := func(s string) alert.Severity {
		v, _ := alert.ParseSeverity(s) // the table accepts only known severities
		return v
	}
	return channels.Settings{
		Email: channels.Email{Enabled: a.EmailEnabled, MinSeverity: sev(a.EmailMinSeverity), Options: email.Options{
			Host: a.SMTPHost, Port: a.SMTPPort, Username: a.SMTPUsername, Password: a.EmailPassword,
			From: a.EmailFrom, To: splitList(a.EmailTo), Timeout: a.Timeout}},
		Telegram: channels.Telegram{Enabled: a.TelegramEnabled, MinSeverity: sev(a.TelegramMinSeverity),
			BotToken: a.TelegramBotToken, ChatID: a.TelegramChatID, APIURL: a.TelegramAPIURL},
		Webhook: channels.Webhook{Enabled: a.WebhookEnabled, MinSeverity: sev(a.WebhookMinSeverity),
			URL: a.WebhookURL, Secret: a.WebhookSecret},
		Slack: channels.Slack{Enabled: a.SlackEnabled, MinSeverity: sev(a.SlackMinSeverity), WebhookURL: a.SlackWebhookURL},
		PagerDuty: channels.PagerDuty{Enabled: a.PagerDutyEnabled, MinSeverity: sev(a.PagerDutyMinSeverity),
			RoutingKey: a.PagerDutyRoutingKey, URL: a.PagerDutyURL, Source: a.PagerDutySource},
	}
}

// alertTopologyCheck validates the alert stream, consumer and bucket names.
func (c Config) alertTopologyCheck() componentCheck {
	return componentCheck{map[string]string{
		"Stream": "ALERTS_STREAM", "SubjectPrefix": "ALERTS_SUBJECT_PREFIX", "Consumer": "ALERT_DISPATCHER_CONSUMER",
		"Bucket": "ALERT_INCIDENTS_BUCKET", "MaxAge": "ALERTS_MAX_AGE", "Replicas": "STREAM_REPLICAS",
	}, c.AlertTopology().WithDefaults().Validate()}
}

// alertChannelChecks validates every enabled alert channel.
func (c Config) alertChannelChecks() []componentCheck {
	var checks []componentCheck
	ch := c.AlertChannels()
	if ch.Email.Enabled {
		checks = append(checks, componentCheck{map[string]string{"Host": "SMTP_HOST", "Port": "SMTP_PORT",
			"From": "EMAIL_FROM", "To": "EMAIL_TO"}, ch.Email.Options.WithDefaults().Validate()})
	}
	if t := ch.Telegram; t.Enabled {
		o := telegram.Options{BotToken: t.BotToken, ChatID: t.ChatID, APIURL: t.APIURL}
		checks = append(checks, componentCheck{map[string]string{"BotToken": "TELEGRAM_BOT_TOKEN",
			"ChatID": "TELEGRAM_CHAT_ID", "APIURL": "TELEGRAM_API_URL"}, o.WithDefaults().Validate()})
	}
	if w := ch.Webhook; w.Enabled {
		o := webhook.Options{URL: w.URL, Secret: w.Secret}
		checks = append(checks, componentCheck{map[string]string{"URL": "WEBHOOK_URL", "Secret": "WEBHOOK_SECRET"}, o.Validate()})
	}
	if s := ch.Slack; s.Enabled {
		o := slack.Options{WebhookURL: s.WebhookURL}
		checks = append(checks, componentCheck{map[string]string{"WebhookURL": "SLACK_WEBHOOK_URL"}, o.Validate()})
	}
	if p := ch.PagerDuty; p.Enabled {
		o := pagerduty.Options{RoutingKey: p.RoutingKey, URL: p.URL, Source: p.Source}
		checks = append(checks, componentCheck{map[string]string{"RoutingKey": "PAGERDUTY_ROUTING_KEY",
			"URL": "PAGERDUTY_URL"}, o.WithDefaults().Validate()})
	}
	return checks
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
