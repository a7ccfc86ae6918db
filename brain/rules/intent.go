package rules

import (
	"github.com/parleyhq/parley/brain/internal/nlp"
	"github.com/parleyhq/parley/brain/tools"
)

// Intents the rules brain recognises. Those that run a tool have the
// tool's name, so the dashboard counts the same label whichever brain
// answered.
const (
	IntentServices       = tools.ListServices
	IntentAvailability   = tools.CheckAvailability
	IntentBookings       = tools.ListBookings
	IntentCancel         = tools.CancelBooking
	IntentAccount        = tools.AccountInfo
	IntentSubscription   = tools.SubscriptionInfo
	IntentHelp           = tools.Help
	IntentHuman          = tools.HandoffToHuman
	IntentBookingRequest = "booking_request" // asks to book: not offered
	IntentGreeting       = "greeting"
	IntentSmallTalk      = "small_talk" // thanks, bye, ok
	IntentUnknown        = "unknown"
)

// Keyword sets. Long words match with typos (nlp.Like); the exact sets hold
// short or ambiguous words that would match too much with a typo allowed.
var (
	// Strong words ask for a person on their own; weak ones ("someone",
	// "staff") only with a verb of talking, so "can someone come on
	// Friday?" stays a question about times.
	humanStrong = []string{"human", "humans", "humano", "agent", "agente", "operator", "operador", "manager", "supervisor", "encargado", "responsable"}
	humanFuzzy  = []string{"representative", "representante"}
	humanWeak   = []string{"person", "persona", "staff", "someone", "somebody", "alguien", "people", "team", "equipo"}
	talkWords   = []string{"talk", "speak", "chat", "call", "contact", "phone", "ring", "hablar", "habla", "llamar", "llamame", "contactar"}
	humanPhrase = []string{"real person", "customer service", "atencion al cliente"}

	cancelWords = []string{"cancel", "cancelled", "canceled", "cancelling", "canceling", "cancellation", "cancelar", "cancela", "cancelame", "cancelarla", "cancelarlo", "anular", "anula", "anulame"}

	subscriptionWords = []string{"subscription", "subscriptions", "suscripcion", "subscripcion", "membership", "payment", "payments", "billing", "renewal", "suscrito", "mensualidad"}
	subscriptionExact = []string{"plan", "pay", "paid", "bill", "charge", "charged", "pago", "pagos", "pagar", "cuota", "renew", "factura"}
	leftWords         = []string{"left", "remaining", "remain", "quedan", "queda", "restan", "restantes"}
	countWords        = []string{"bookings", "booking", "sessions", "session", "cleans", "visits", "appointments", "reservas", "sesiones", "limpiezas", "citas", "visitas"}

	bookExact  = []string{"book", "rebook", "reserve", "reservar", "reservarme", "agendar", "reschedule", "reprogramar"}
	bookPhrase = []string{"make a booking", "make an appointment", "new booking", "new appointment", "book me", "hacer una reserva", "nueva reserva", "nueva cita", "pedir cita", "pedir una cita", "sacar una cita", "set up a clean", "schedule a"}

	availabilityWords  = []string{"available", "availability", "disponible", "disponibles", "disponibilidad", "horarios", "openings", "slots"}
	availabilityExact  = []string{"free", "times", "time", "slot", "open", "libre", "libres", "hueco", "huecos", "horario", "hora", "horas", "sitio"}
	availabilityPhrase = []string{"when can", "what time", "cuando pueden", "cuando podeis", "hay hueco", "a que hora"}

	bookingsWords  = []string{"booking", "bookings", "appointment", "appointments", "reservation", "reservations", "upcoming", "scheduled", "schedule", "calendar", "reserva", "reservas", "citas", "agenda"}
	bookingsExact  = []string{"appt", "appts", "cita", "visit", "visits", "history", "historial", "past", "previous", "pasadas", "anteriores"}
	bookingsPhrase = []string{"my clean", "my cleans", "my next", "next clean", "mi limpieza", "mis limpiezas", "mi proxima", "when is my", "whens my", "cuando es mi", "cuando viene"}

	servicesWords  = []string{"services", "service", "servicios", "servicio", "prices", "precios", "precio", "offer", "ofreceis", "ofrecen", "options", "opciones"}
	servicesExact  = []string{"price", "cost", "costs", "menu", "cuesta", "cuestan", "types", "tipos"}
	servicesPhrase = []string{"how much", "what do you do", "cuanto cuesta", "cuanto vale", "cuanto valen", "que haceis", "que hacen"}

	accountWords  = []string{"account", "details", "profile", "email", "address", "cuenta", "perfil", "correo", "direccion", "datos"}
	accountExact  = []string{"info", "phone", "telefono", "mail"}
	accountPhrase = []string{"my information", "member since", "mis datos", "mi informacion"}

	helpWords  = []string{"help", "ayuda", "ayudar", "ayudarme", "assist"}
	helpPhrase = []string{"what can you", "what do you", "what can i ask", "how does this work", "que puedes", "que sabes", "como funciona", "what are you", "who are you", "quien eres"}

	greetingWords = []string{"hi", "hello", "hey", "hiya", "hola", "buenas", "buenos", "morning", "afternoon", "evening", "good", "dias", "tardes", "noches", "there", "yo", "holi", "ola", "hellooo", "helo"}

	thanksWords = []string{"thanks", "thank", "thx", "ty", "cheers", "gracias", "perfect", "perfecto", "great", "genial", "ok", "okay", "vale", "cool", "nice", "bye", "goodbye", "adios", "ciao", "chao", "lovely", "brilliant", "awesome", "excelente", "muchas", "you", "hasta", "luego", "pronto", "no", "nothing", "nada", "that", "all", "es", "todo", "eso", "s", "its", "fine"}
)

// Yes and no to a confirmation question.
var (
	yesWords   = []string{"yes", "y", "yeah", "yep", "yup", "ya", "sure", "confirm", "confirmed", "confirmo", "ok", "okay", "correct", "si", "claro", "vale", "dale", "adelante", "afirmativo", "definitely", "absolutely"}
	noWords    = []string{"no", "nope", "nah", "dont", "keep", "stop", "nevermind", "mantener", "mantenla", "mantenlo", "deja", "dejala", "nunca", "wait", "espera"}
	yesPhrases = []string{"go ahead", "do it", "please do", "please cancel", "por favor", "yes please", "hazlo"}
)

// classify picks the intent of a message. The order is the priority: the
// more specific request wins when a message touches several ("can you help
// me cancel" is a cancellation, "how many bookings do I have left" is the
// subscription quota, not a list of bookings).
func classify(words []string, mentionsService, mentionsDate bool) string {
	switch {
	case nlp.HasExact(words, humanStrong...) || nlp.HasAny(words, humanFuzzy...) || hasPhrase(words, humanPhrase) ||
		nlp.HasExact(words, humanWeak...) && nlp.HasExact(words, talkWords...):
		return IntentHuman
	case nlp.HasAny(words, cancelWords...):
		return IntentCancel
	case nlp.HasAny(words, leftWords...) && (nlp.HasAny(words, countWords...) || nlp.HasPhrase(words, "how many") || nlp.HasExact(words, "cuantas", "cuantos")):
		return IntentSubscription
	case nlp.HasAny(words, subscriptionWords...) || nlp.HasExact(words, subscriptionExact...):
		return IntentSubscription
	case nlp.HasExact(words, bookExact...) || hasPhrase(words, bookPhrase) || wantsNew(words):
		return IntentBookingRequest
	case nlp.HasExact(words, possessives...) && (nlp.HasAny(words, bookingsWords...) || nlp.HasExact(words, bookingsExact...) || nlp.HasExact(words, "clean", "cleans", "limpieza", "limpiezas")) &&
		!nlp.HasAny(words, availabilityWords...):
		// "What time is my clean?" asks about a booking, not about free
		// times.
		return IntentBookings
	case nlp.HasAny(words, availabilityWords...) || nlp.HasExact(words, availabilityExact...) || hasPhrase(words, availabilityPhrase):
		return IntentAvailability
	case nlp.HasAny(words, bookingsWords...) || nlp.HasExact(words, bookingsExact...) || hasPhrase(words, bookingsPhrase):
		return IntentBookings
	case nlp.HasAny(words, servicesWords...) || nlp.HasExact(words, servicesExact...) || hasPhrase(words, servicesPhrase):
		return IntentServices
	case nlp.HasAny(words, accountWords...) || nlp.HasExact(words, accountExact...) || hasPhrase(words, accountPhrase):
		return IntentAccount
	case nlp.HasAny(words, helpWords...) || hasPhrase(words, helpPhrase) || nlp.HasExact(words, "commands", "comandos", "menu"):
		return IntentHelp
	case mentionsService || mentionsDate && len(words) <= 6:
		// "Deep clean on Friday?" names what and when but no verb: the
		// customer is asking whether it can be done.
		return IntentAvailability
	case isGreeting(words):
		return IntentGreeting
	case len(words) > 0 && len(words) <= 6 && onlyFrom(words, thanksWords):
		return IntentSmallTalk
	}
	return IntentUnknown
}

var possessives = []string{"my", "mi", "mis"}

// wantsNew reads Spanish "quiero una cita" (I want an appointment) as a
// request to book, but not "quiero ver mi cita" (I want to see it).
func wantsNew(words []string) bool {
	return nlp.HasExact(words, "quiero", "querria", "gustaria", "quisiera") &&
		nlp.HasExact(words, "reserva", "cita", "limpieza") &&
		!nlp.HasExact(words, "ver", "mi", "mis", "saber", "cancelar")
}

var greetingOpeners = []string{"hi", "hello", "hey", "hiya", "hola", "buenas", "buenos", "good", "morning", "holi", "ola", "helo", "yo"}

// isGreeting is a short message that opens with a greeting and says little
// else ("hi", "good morning", "hola Ana"): one word outside the greeting
// vocabulary (a name) is allowed.
func isGreeting(words []string) bool {
	if len(words) == 0 || len(words) > 5 || !nlp.HasAny(words[:1], greetingOpeners...) {
		return false
	}
	other := 0
	for _, w := range words {
		if !nlp.HasAny([]string{w}, greetingWords...) {
			other++
		}
	}
	return other == 0 || other == 1 && len(words) <= 3
}

func hasPhrase(words []string, phrases []string) bool {
	for _, p := range phrases {
		if nlp.HasPhrase(words, p) {
			return true
		}
	}
	return false
}

// onlyFrom reports whether every word is one of set (typos allowed).
func onlyFrom(words, set []string) bool {
	for _, w := range words {
		if !nlp.HasAny([]string{w}, set...) {
			return false
		}
	}
	return true
}

// Languages the rules brain speaks.
const (
	English = "en"
	Spanish = "es"
)

// Words that mark a language. Words both languages use ("me", "no", "a",
// "plan", service names) are in neither list.
var (
	spanishMarkers = []string{"hola", "que", "quiero", "mis", "mi", "reservas", "reserva", "cita", "citas", "cancelar", "cancela",
		"disponible", "disponibles", "horarios", "hay", "para", "una", "el", "la", "los", "las", "de", "del", "por", "favor",
		"gracias", "puedes", "ayuda", "me", "ayudar", "cuantas", "cuantos", "cual", "suscripcion", "manana", "proximo", "miercoles",
		"jueves", "viernes", "sabado", "domingo", "lunes", "martes", "hoy", "limpieza", "limpiezas", "tengo", "quedan", "hablar",
		"con", "buenos", "buenas", "dias", "tardes", "cuenta", "pago", "si", "es", "esta", "muestrame", "ver", "cuando", "como",
		"tiene", "tienes", "necesito", "y", "en", "mas", "pero", "semana", "proxima", "siguiente", "sesiones", "datos", "correo",
		"persona", "humano", "agente", "servicios", "precio", "precios", "ofrecen", "hacer", "sabes", "eres", "adios", "vale",
		"claro", "tarde", "noche", "anular", "cuesta", "dime", "quisiera", "podrias", "puedo", "algun", "alguna", "hueco", "huecos", "libre"}
	englishMarkers = []string{"the", "my", "what", "whats", "show", "is", "are", "i", "you", "for", "on", "can", "how", "many",
		"do", "have", "left", "bookings", "booking", "cancel", "available", "times", "hi", "hello", "hey", "thanks", "thank",
		"please", "help", "next", "tomorrow", "today", "appointment", "appointments", "subscription", "want", "to", "with",
		"when", "this", "of", "and", "it", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
		"yes", "there", "any", "free", "account", "services", "much", "does", "cost", "book", "talk", "person", "human",
		"agent", "am", "be", "will", "did", "was", "were", "your", "im", "id", "morning", "afternoon", "evening", "upcoming",
		"current", "payment", "an", "get", "need", "would", "like", "could", "at", "in", "okay", "bye", "good",
		"great", "see", "remaining", "past", "about", "who", "where", "which", "slots", "email", "sessions"}
	spanishSet, englishSet = setOf(spanishMarkers), setOf(englishMarkers)
)

func setOf(words []string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// DetectLanguage guesses whether a message is English or Spanish. sure is
// false when the message does not say enough to tell ("ok", "9:00"): the
// shell then keeps asking on later messages instead of fixing a guess.
func DetectLanguage(text string) (lang string, sure bool) {
	return detect(nlp.Words(text))
}

func detect(words []string) (string, bool) {
	es, en := 0, 0
	for _, w := range words {
		if spanishSet[w] {
			es++
		}
		if englishSet[w] {
			en++
		}
	}
	switch {
	case es > en:
		return Spanish, true
	case en > es:
		return English, true
	}
	return English, false
}

// Classify labels a message with the rules brain's intent, without running
// anything: the language-model brain uses it for the query type of answers
// that called no tool.
func Classify(text string) string {
	words := nlp.Words(text)
	return classify(words, false, false)
}
