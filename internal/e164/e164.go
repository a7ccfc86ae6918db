// Package e164 is the one definition of a phone number as Parley stores
// and accepts it: E.164, "+447700900123".
package e164

import "regexp"

// pattern is an international number: +, a country code that does not
// start with 0, 7 to 15 digits in all, no spaces.
var pattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Valid reports whether s is an E.164 number as Parley stores them
// (+4915112345678 yes; 0151/12345678 and +49 (0) 151 12345678 no).
func Valid(s string) bool { return pattern.MatchString(s) }
