package mask

import "testing"

func TestSecret(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"short":                            "****",
		"0123456789abcdef0123456789abcdef": "****cdef",
	} {
		if got := Secret(in); got != want {
			t.Errorf("Secret(%q) = %q, want %q", in, got, want)
		}
	}
}
