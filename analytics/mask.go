package analytics

// MaskPhone hides a phone number but for its last four digits:
// +447700900123 → +********0123. For callers whose role may not see
// customers' numbers.
func MaskPhone(phone string) string {
	if len(phone) <= 4 {
		return "****"
	}
	b := []byte(phone)
	for i := 0; i < len(b)-4; i++ {
		if b[i] >= '0' && b[i] <= '9' {
			b[i] = '*'
		}
	}
	return string(b)
}
