package conversation

import "testing"

func TestMaskEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"jane@example.com", "j***@example.com"},
		{"J.Smith+tag@Example.COM", "J***@Example.COM"},
		{"a@b.co", "a***@b.co"},
		{"  jane@example.com ", "j***@example.com"},
		{"\"odd@local\"@example.com", "\"***@example.com"},
		{"élodie@exemple.fr", "é***@exemple.fr"},
		{"@example.com", "***@example.com"},
		{"jane@", "***"},
		{"no-at-sign", "***"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := MaskEmail(tc.in); got != tc.want {
			t.Errorf("MaskEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCode(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"123456", "123456"},
		{"123 456", "123456"},
		{" 12 34 56 ", "123456"},
		{"123-456", "123456"},
		{"123.456", "123456"},
		{"000000", "000000"},
		{"١٢٣٤٥٦", "123456"},
		{"۱۲۳۴۵۶", "123456"},
		{"１２３４５６", "123456"},
		{"12345", ""},
		{"1234567", ""},
		{"12345a", ""},
		{"code 123456", ""},
		{"", ""},
		{"¹²³⁴⁵⁶", ""},
	}
	for _, tc := range tests {
		got, ok := parseCode(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("parseCode(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestNormalizeAndIntents(t *testing.T) {
	if got := normalize("  Nuevo CÓDIGO, ¡por favor!  "); got != "nuevo codigo por favor" {
		t.Fatalf("normalize = %q", got)
	}
	for _, s := range []string{"help", "Help!", "HELP ME", "What can you do?", "ayuda", "¿Qué puedes hacer?"} {
		if !isHelp(normalize(s)) {
			t.Errorf("%q is help", s)
		}
	}
	for _, s := range []string{"help with my booking", "hello", "1", "what is my balance"} {
		if isHelp(normalize(s)) {
			t.Errorf("%q is not help", s)
		}
	}
	for _, s := range []string{"recode", "new", "code", "send", "encoded"} {
		if isResend(normalize(s)) {
			t.Errorf("%q is not a resend request", s)
		}
	}
}
