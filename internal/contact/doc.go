// Package contact is the contact model of a call campaign: strict decoding of one
// contact, validation, and a streaming reader for contacts files.
//
// The publisher reads a contacts file with [NewReader] (a first pass validates the
// whole file, a second pass publishes its records as they are); a worker decodes one
// message payload with [Decode].
//
// # Contact fields
//
//   - id: required. 1–128 characters from A–Z a–z 0–9 . _ - = ; it must not start
//     or end with '.' and must not contain "..". Such an id is a valid JetStream KV
//     key and a valid suffix of a NATS subject, so it can be used as KV key and as
//     the Nats-Msg-Id of the published message.
//   - phone: required, E.164: '+' then 7–15 digits, the first digit 1–9, nothing
//     else (no spaces, dashes, dots or parentheses): +14155550123.
//   - name: optional, at most 200 characters, no control characters (it is printed
//     on the console and in logs).
//   - language: optional BCP 47 style tag such as en, en-US or pt-BR: 2–35
//     characters, subtags of 1–8 letters or digits separated by single '-', the
//     first subtag 2–8 letters.
//   - variables: optional object of string values, at most 64 entries; names match
//     [A-Za-z_][A-Za-z0-9_]{0,63}; values are at most 2,000 characters.
//
// Decoding is strict. Field names are matched exactly (case-sensitive); an unknown
// field ("phone_number", "Phone") is an error, so a typo never turns into a
// silently missing value. A field given twice in one object is an error. Each field
// must have its JSON type: a number for "phone" or a non-string variable value is an
// error naming the field. null stands for an absent top-level field (so a null id
// or phone is reported as missing); a null variable value is an error.
// Every problem of a contact is reported at once, one per field, in the order
// unknown fields, id, name, phone, language, variables (by field path), as an
// [*InvalidError].
//
// # Contacts files
//
// A contacts file is either a JSON array of contact objects or NDJSON (one contact
// object per line; blank lines are skipped; CRLF line ends are accepted). The
// format is chosen by the first character after an optional UTF-8 byte order mark
// and leading whitespace: '[' is a JSON array, '{' is NDJSON, anything else is a
// [*SyntaxError]. A file with no contacts (empty, only whitespace, or "[]") is
// [ErrEmpty].
//
// [Reader] streams the file with constant memory: one contact, at most
// [MaxRecordBytes], is held at a time. An id repeated within the file is reported at
// its second occurrence, naming the first ([ErrDuplicateID], [*DuplicateIDError]).
// To find repeats the reader keeps a 64-bit hash of each record's id and a hash table
// of the first occurrences: 15–21 bytes per contact (19 MB for 1,000,000 contacts,
// with no pointers for the garbage collector to scan), the only memory that grows with
// the file ([Reader.IgnoreRepeatedIDs] turns it off). Two different ids share a hash
// with probability about n²/2⁶⁵ (3·10⁻⁸ for 1,000,000 contacts), which would report a
// false repeat.
//
// [Reader.Check] validates without building the contacts (a first pass over a file), and
// [Reader.Skim] frames the records of an already validated file without validating them
// again; [Reader.Raw] returns the record as it is in the file.
//
// Errors: an [*InvalidError] is one contact that is well-formed JSON but not a
// valid contact; the reader can go on with the next one. A [*SyntaxError] (malformed
// JSON, a record over [MaxRecordBytes], garbage after the array) and [ErrEmpty] are
// fatal: reading cannot continue.
package contact
