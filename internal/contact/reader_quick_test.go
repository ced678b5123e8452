package contact

import (
	"strings"
	"testing"
)

// quickAgrees fails t unless quickCheck's verdict on data agrees with the full check: when
// it accepts a record, validJSON and checkValue must find it valid, with the same id.
func quickAgrees(t *testing.T, data []byte) (accepted bool) {
	t.Helper()
	id, ok := quickCheck(data)
	if !ok {
		return false
	}
	if !validJSON(data) {
		t.Fatalf("quickCheck accepted %q, which is not well-formed JSON", data)
	}
	c, ps := checkValue(data, new(scratch))
	if len(ps) > 0 || c.ID != id {
		t.Fatalf("quickCheck accepted %q with id %q; the full check finds id %q and %v", data, id, c.ID, ps)
	}
	full, ps := parseValue(data)
	if len(ps) > 0 || full.Validate() != nil {
		t.Fatalf("quickCheck accepted %q; parseValue finds %v", data, ps)
	}
	return true
}

// TestQuickCheckAcceptsCommonRecords: the records of ordinary files take the quick path
// (else validating a large file is several times slower, though as correct).
func TestQuickCheckAcceptsCommonRecords(t *testing.T) {
	for _, rec := range []string{
		`{"id":"c-0000001","name":"Contact 1","phone":"+14150000001","language":"en-US","variables":{"topic":"your appointment on Friday"}}`,
		`{"id":"a","phone":"+14155550101"}`,
		` { "phone" : "+14155550101" , "id" : "a.b_c-d=" , "variables" : { } } `,
		"{\"id\":\"a\",\t\"phone\":\"+14155550101\",\r\"name\":\"Zoë Ñúñez 王\"}",
		`{"id":"a","phone":"+14155550101","variables":{"first_name":"Zoë","_x":"","A9":"line one and two"}}`,
		`{"id":"` + strings.Repeat("x", MaxIDLen) + `","phone":"+141555501011234","language":"zh-Hant-TW"}`,
	} {
		if !quickAgrees(t, []byte(rec)) {
			t.Errorf("quickCheck left %s to the full check", rec)
		}
	}
}

// TestQuickCheckLeavesTheRestToTheFullCheck: whatever is not plainly valid is left to the
// full check, which words the problem (or, for an escape or a null, finds none).
func TestQuickCheckLeavesTheRestToTheFullCheck(t *testing.T) {
	many := make([]string, maxQuickVariables+1)
	for i := range many {
		many[i] = `"v` + strings.Repeat("x", i) + `":"1"`
	}
	for _, rec := range []string{
		``, ` `, `[]`, `{}`, `{`, `{"id":"a","phone":"+14155550101"`, `{"id":"a","phone":"+14155550101"}x`,
		`{"id":"a","phone":"+14155550101"}}`, `{"id":"a","phone":"+14155550101",}`, `{"id":"a" "phone":"+14155550101"}`,
		`{"id":"a","phone":"+14155550101","id":"b"}`, `{"id":"a","phone":"+14155550101","Id":"b"}`,
		`{"id":"a","phone":"+14155550101","extra":"x"}`, `{"id":"a","phone":"+14155550101","name":null}`,
		`{"id":"a\u0062","phone":"+14155550101"}`, `{"i\u0064":"a","phone":"+14155550101"}`,
		`{"id":"a","phone":14155550101}`, `{"id":"a","phone":"+14155550101","variables":null}`,
		`{"id":"a","phone":"+14155550101","variables":{"x":1}}`, `{"id":"a","phone":"+14155550101","variables":{"x":"1","x":"2"}}`,
		`{"id":"a","phone":"+14155550101","variables":{"1x":"1"}}`, `{"id":"a","phone":"+14155550101","variables":["x"]}`,
		`{"id":"a","phone":"+14155550101","variables":{` + strings.Join(many, ",") + `}}`,
		`{"id":"a","phone":"+14155550101","variables":{"x":"` + strings.Repeat("é", MaxVariableValueLen+1) + `"}}`,
		`{"id":"","phone":"+14155550101"}`, `{"phone":"+14155550101"}`, `{"id":"a"}`, `{"id":"a b","phone":"+14155550101"}`,
		`{"id":".a","phone":"+14155550101"}`, `{"id":"a..b","phone":"+14155550101"}`,
		`{"id":"` + strings.Repeat("x", MaxIDLen+1) + `","phone":"+14155550101"}`,
		`{"id":"a","phone":"+1 415 555 0101"}`, `{"id":"a","phone":"+04155550101"}`, `{"id":"a","phone":"+1415555010112345"}`,
		`{"id":"a","phone":"+14155550101","language":"e"}`, `{"id":"a","phone":"+14155550101","language":"en_US"}`,
		`{"id":"a","phone":"+14155550101","name":"` + strings.Repeat("x", MaxNameLen+1) + `"}`,
		"{\"id\":\"a\",\"phone\":\"+14155550101\",\"name\":\"x\x7f\"}", "{\"id\":\"a\",\"phone\":\"+14155550101\",\"name\":\"x\x01\"}",
		"{\"id\":\"a\",\"phone\":\"+14155550101\",\"name\":\"\xff\"}", "{\"id\":\"a\",\"phone\":\"+14155550101\",\"name\":\"\u0085\"}",
		"{\"id\":\"a\",\"phone\":\"+14155550101\"}\v",
	} {
		if quickAgrees(t, []byte(rec)) {
			t.Errorf("quickCheck accepted %q", rec)
		}
	}
}

// FuzzQuickCheck: whatever quickCheck accepts, the full check accepts with the same id.
func FuzzQuickCheck(f *testing.F) {
	for _, seed := range []string{
		`{"id":"c-0000001","name":"Contact 1","phone":"+14150000001","language":"en-US","variables":{"topic":"your appointment on Friday"}}`,
		`{"id":"a","phone":"+14155550101","variables":{"x":"1","y":"é"}}`,
		` {"phone":"+14155550101", "id":"a"} `,
		`{"id":"a","phone":"+14155550101","name":"a\"b"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) { quickAgrees(t, data) })
}
