// Package sheets is the optional Google Sheets error log (the seed's GOOGLE_SHEETS_ENABLED,
// disabled by default): a logrus hook that appends the JSON error records — warnings and
// errors — to a spreadsheet, one row per record, in batches through the Sheets API
// (spreadsheets.values.append with valueInputOption=RAW).
//
// It authenticates as a Google service account (a JSON key file; the OAuth token URL comes
// from the file's token_uri) with golang.org/x/oauth2/jwt, and sends through its own Guard
// and Retrier from package resilience, so a Sheets outage opens its own breaker and never
// touches the providers'.
//
// Logging never waits for Google: Fire puts the record in a bounded buffer and returns. When
// the buffer is full the record is dropped, counted (Stats, the Observer) and the count is
// logged at the next flush: nothing is dropped silently. A batch the API refuses because the
// setup is wrong (the sheet not shared with the service account, a range naming no sheet, a
// wrong spreadsheet id, refused credentials) is kept and logged once with what to fix; only
// rows refused as such are dropped. Requests go through the worker's outbound HTTP client
// (package httpx): redirects are never followed and bodies are capped. Every cell is redacted (phone numbers
// masked, registered secrets and credential shapes removed) before it leaves the process, and
// records about the sink itself are never sent to it.
package sheets
