// Package mask hides credentials in anything Parley prints, logs or
// returns. It sits below every package that holds a secret, so they all
// mask the same way.
package mask

// Secret shows at most the last four characters of a credential, and none
// of a short one.
func Secret(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) < 12:
		return "****"
	default:
		return "****" + s[len(s)-4:]
	}
}
