package conversation

import (
	"fmt"
	"time"
)

// Texts are the replies the core sends and, below, the phrases it
// recognises. All customer-facing words live in this file so that a
// language is added by writing one more Texts value (and a tenant selects
// it with Policy.Texts). Functions take what varies, so each language can
// handle its own plurals and word order.
type Texts struct {
	// NoProfile: no profile uses this number; say what to do.
	NoProfile string
	// AccessDisabled: the profile has WhatsApp access turned off.
	AccessDisabled string
	// ChooseProfile asks which of the listed profiles the customer is;
	// ChooseAgain asks again after an answer that matched none (or
	// several). list is ProfileLine of each, one per line.
	ChooseProfile func(list string) string
	ChooseAgain   func(list string) string
	// ProfileLine is one numbered profile; maskedEmail may be empty.
	ProfileLine func(n int, name, maskedEmail string) string
	// CodeMessage is the message that carries the code.
	CodeMessage func(code string, ttl time.Duration) string
	// CodeWrong: a wrong code, with left attempts remaining (at least 1).
	CodeWrong func(left int) string
	// CodeLocked: the last allowed wrong attempt; ask for a new code.
	CodeLocked string
	// CodeExpired: the code ran out; offer a new one.
	CodeExpired string
	// NoActiveCode: a code was entered but none is valid (locked, refused
	// by the limits, or already replaced); ask for a new one.
	NoActiveCode string
	// AskForCode: the message was not a code; prompt again.
	AskForCode string
	// CodeLimit: too many codes; wait is how long until one is allowed.
	CodeLimit func(wait time.Duration) string
	// Verified greets the customer once signed in; firstName may be empty.
	Verified func(firstName string) string
	// SessionExpired precedes the new sign-in after a session ran out.
	SessionExpired string
	// LookupFailed: the backend could not be asked; try again later.
	LookupFailed string
}

// English is the default language.
var English = Texts{
	NoProfile: "Sorry, I couldn't find an account that uses this WhatsApp number. " +
		"If you are already a customer, please ask us to add this number to your profile " +
		"(or sign up if you're new), then message me again.",
	AccessDisabled: "WhatsApp access is turned off for this account, so I can't sign you in here. " +
		"Please contact us another way if you'd like it turned on.",
	ChooseProfile: func(list string) string {
		return "This number is used by more than one profile. Which one are you?\n" + list +
			"\nReply with the number or the name."
	},
	ChooseAgain: func(list string) string {
		return "Sorry, I couldn't tell which profile you mean. Please reply with the number or the name:\n" + list
	},
	ProfileLine: func(n int, name, maskedEmail string) string {
		if maskedEmail == "" {
			return fmt.Sprintf("%d. %s", n, name)
		}
		return fmt.Sprintf("%d. %s (%s)", n, name, maskedEmail)
	},
	CodeMessage: func(code string, ttl time.Duration) string {
		return fmt.Sprintf("Your verification code is %s. It is valid for %s. Reply with the code to sign in.", code, englishDuration(ttl))
	},
	CodeWrong: func(left int) string {
		if left == 1 {
			return "That code isn't right. You have 1 attempt left."
		}
		return fmt.Sprintf("That code isn't right. You have %d attempts left.", left)
	},
	CodeLocked: "That code isn't right, and it is now blocked after too many wrong attempts. " +
		"Reply NEW CODE to get a new one.",
	CodeExpired:  "That code has expired. Reply NEW CODE and I'll send you a new one.",
	NoActiveCode: "You don't have a valid code right now. Reply NEW CODE to get a new one.",
	AskForCode:   "Please reply with the 6-digit code I sent you. If it didn't arrive, reply NEW CODE.",
	CodeLimit: func(wait time.Duration) string {
		return "You've asked for too many codes. Please try again in " + englishDuration(wait) + "."
	},
	Verified: func(firstName string) string {
		if firstName == "" {
			return "Hi, you're signed in. How can I help you today?"
		}
		return "Hi " + firstName + ", you're signed in. How can I help you today?"
	},
	SessionExpired: "Your session has expired, so I need to check it's you again.",
	LookupFailed:   "Sorry, I can't check your account right now. Please try again in a few minutes.",
}

// englishDuration says a wait in words, rounded up to the minute so that
// "try again in N minutes" is never too early: "1 minute", "42 minutes",
// "2 hours", "1 hour 5 minutes".
func englishDuration(d time.Duration) string {
	m := int64((d + time.Minute - 1) / time.Minute)
	if m < 1 {
		m = 1
	}
	h, m := m/60, m%60
	unit := func(n int64, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	switch {
	case h == 0:
		return unit(m, "minute", "minutes")
	case m == 0:
		return unit(h, "hour", "hours")
	default:
		return unit(h, "hour", "hours") + " " + unit(m, "minute", "minutes")
	}
}

// Phrases are recognised in every language whatever Policy.Texts says:
// customers write in the language they like. They are written normalized
// (lower case, no accents or punctuation; see normalize).

// helpPhrases are whole messages that ask what the assistant can do.
var helpPhrases = map[string]struct{}{
	"help": {}, "help me": {}, "help please": {}, "i need help": {},
	"what can you do": {}, "what do you do": {}, "how does this work": {},
	"menu": {}, "info": {},
	"ayuda": {}, "que puedes hacer": {},
}

// resendPhrases, found anywhere in a message as whole words, ask for a new
// code.
var resendPhrases = []string{
	"new code", "resend", "send code again", "send the code again", "send it again",
	"send again", "another code", "code again", "didn t get", "didnt get",
	"didn t receive", "didnt receive", "not received",
	"nuevo codigo", "reenviar", "reenvia", "otro codigo", "no me llego",
}
