package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/parleyhq/parley/brain/tools"
)

// speaker phrases replies in one language for one customer.
type speaker struct {
	es    bool
	name  string // first name, may be empty
	today time.Time
	// business is the tenant's name; dashboard where customers book.
	business  string
	dashboard string
}

// pick returns the English or Spanish text.
func (s speaker) pick(en, es string) string {
	if s.es {
		return es
	}
	return en
}

// comma is ", Sam" or "", to end a short phrase with the customer's name.
func (s speaker) comma() string {
	if s.name == "" {
		return ""
	}
	return ", " + s.name
}

// spaceName is " Sam" or "".
func (s speaker) spaceName() string {
	if s.name == "" {
		return ""
	}
	return " " + s.name
}

var (
	weekdaysES = [...]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
	monthsES   = [...]string{"", "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
)

// day names a date: "Wednesday 11 March", "miércoles 11 de marzo", with the
// year only when it is not this year's.
func (s speaker) day(t time.Time) string {
	var d string
	if s.es {
		d = fmt.Sprintf("%s %d de %s", weekdaysES[t.Weekday()], t.Day(), monthsES[t.Month()])
		if t.Year() != s.today.Year() {
			d += fmt.Sprintf(" de %d", t.Year())
		}
	} else {
		d = fmt.Sprintf("%s %d %s", t.Weekday(), t.Day(), t.Month())
		if t.Year() != s.today.Year() {
			d += fmt.Sprintf(" %d", t.Year())
		}
	}
	return d
}

// on is a date as an adverbial: "on Wednesday 11 March", "el miércoles 11
// de marzo"; today and tomorrow say so, because customers think in those
// words: "today (Tuesday 10 March)".
func (s speaker) on(t time.Time) string {
	d := s.day(t)
	switch daysBetween(s.today, t) {
	case 0:
		return s.pick("today ("+d+")", "hoy ("+d+")")
	case 1:
		return s.pick("tomorrow ("+d+")", "mañana ("+d+")")
	}
	return s.pick("on "+d, "el "+d)
}

// capital upper-cases the first letter of a sentence.
func capital(s string) string {
	for i, r := range s {
		return strings.ToUpper(string(r)) + s[i+len(string(r)):]
	}
	return s
}

func daysBetween(a, b time.Time) int {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	da := time.Date(ay, am, ad, 12, 0, 0, 0, time.UTC)
	db := time.Date(by, bm, bd, 12, 0, 0, 0, time.UTC)
	return int(db.Sub(da).Hours() / 24)
}

// list joins items as prose: "a, b and c" / "a, b y c".
func (s speaker) list(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + s.pick(" and ", " y ") + items[len(items)-1]
}

func (s speaker) or(items []string) string {
	if len(items) < 2 {
		return s.list(items)
	}
	return strings.Join(items[:len(items)-1], ", ") + s.pick(" or ", " o ") + items[len(items)-1]
}

func (s speaker) part(p string) string {
	switch p {
	case "morning":
		return s.pick("in the morning", "por la mañana")
	case "afternoon":
		return s.pick("in the afternoon", "por la tarde")
	case "evening":
		return s.pick("in the evening", "por la noche")
	}
	return ""
}

func (s speaker) duration(min int) string {
	h, m := min/60, min%60
	switch {
	case h > 0 && m > 0:
		return fmt.Sprintf("%d h %d min", h, m)
	case h > 0:
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d min", m)
}

func (s speaker) whereToBook() string {
	if s.dashboard != "" {
		return s.pick("our web dashboard ("+s.dashboard+")", "nuestro panel web ("+s.dashboard+")")
	}
	return s.pick("our web dashboard", "nuestro panel web")
}

// Fixed replies.

func (s speaker) greeting() string {
	who := s.pick("the virtual assistant", "el asistente virtual")
	if s.business != "" {
		who = s.pick("the "+s.business+" assistant", "el asistente de "+s.business)
	}
	return s.pick("Hello"+s.spaceName()+"! I'm "+who+". ", "¡Hola"+s.spaceName()+"! Soy "+who+". ") + s.helpShort()
}

func (s speaker) helpShort() string {
	return s.pick(
		"I can tell you about our services and availability, show or cancel your bookings, and answer questions about your account and subscription. Type \"help\" at any time.",
		"Puedo informarte de nuestros servicios y disponibilidad, mostrar o cancelar tus reservas y responder sobre tu cuenta y suscripción. Escribe \"ayuda\" cuando quieras.")
}

func (s speaker) help() string {
	if s.es {
		return "Claro" + s.comma() + ", esto es lo que puedo hacer:\n" +
			"• Contarte nuestros servicios y precios\n" +
			"• Ver horarios libres (p. ej. \"¿Qué hay libre el próximo miércoles?\")\n" +
			"• Mostrar tus próximas reservas y cancelar una\n" +
			"• Consultar tu cuenta y tu suscripción (sesiones que te quedan, próximo pago)\n" +
			"• Pasarte con una persona del equipo\n" +
			"No puedo hacer reservas nuevas por aquí, pero puedes reservar en " + s.whereToBook() + "."
	}
	return "Sure" + s.comma() + ", here's what I can help you with:\n" +
		"• Our services and prices\n" +
		"• Available times (e.g. \"What's free next Wednesday?\")\n" +
		"• Your upcoming bookings, and cancelling one\n" +
		"• Your account and subscription (sessions left, next payment)\n" +
		"• Passing you to a person from the team\n" +
		"I can't make new bookings here, but you can book on " + s.whereToBook() + "."
}

func (s speaker) smallTalk(words []string) string {
	if len(words) > 0 && (words[0] == "no" || words[0] == "nothing" || words[0] == "nada" || words[0] == "nope") {
		return s.pick("Alright"+s.comma()+". I'm here if you need anything.", "De acuerdo"+s.comma()+". Aquí estoy si necesitas algo.")
	}
	for _, w := range words {
		switch w {
		case "bye", "goodbye", "adios", "ciao", "chao", "luego", "pronto":
			return s.pick("Goodbye"+s.spaceName()+", have a lovely day!", "¡Hasta pronto"+s.spaceName()+"! Que tengas un buen día.")
		}
	}
	return s.pick("You're welcome"+s.comma()+"! Anything else I can help with?", "¡De nada"+s.comma()+"! ¿Te ayudo con algo más?")
}

func (s speaker) notUnderstood() string {
	return s.pick(
		"Sorry"+s.comma()+", I didn't quite get that. You can ask me things like \"Show my upcoming bookings\", \"What's free next Wednesday?\" or \"What's my subscription?\" — or type \"help\".",
		"Perdona"+s.comma()+", no te he entendido. Puedes preguntarme cosas como \"Muéstrame mis reservas\", \"¿Qué hay libre el próximo miércoles?\" o \"¿Cuál es mi suscripción?\", o escribe \"ayuda\".")
}

func (s speaker) handoff(reason string) string {
	if reason == "not_understood" {
		return s.pick(
			"Sorry"+s.comma()+", I'm having trouble understanding. I've asked a person from the team to help — they'll reply here as soon as they can.",
			"Perdona"+s.comma()+", me está costando entenderte. He pedido a una persona del equipo que te ayude; te responderá por aquí lo antes posible.")
	}
	return s.pick(
		"Of course"+s.comma()+". I've asked a person from the team to take over — they'll reply here as soon as they can.",
		"Por supuesto"+s.comma()+". He pedido a una persona del equipo que continúe la conversación; te responderá por aquí lo antes posible.")
}

func (s speaker) notSignedIn() string {
	return s.pick(
		"I can show that once you've signed in with the 6-digit code we send you here on WhatsApp. Meanwhile I can tell you about our services and available times.",
		"Puedo mostrarte eso cuando inicies sesión con el código de 6 dígitos que te enviamos por WhatsApp. Mientras tanto puedo informarte de nuestros servicios y horarios libres.")
}

// failure explains a failed tool call with the next best step.
func (s speaker) failure(r tools.Result) string {
	switch r.Code {
	case tools.ErrNotSignedIn:
		return s.notSignedIn()
	case tools.ErrPastDate:
		return s.pick("That date has already passed"+s.comma()+". Which day would you like?", "Esa fecha ya ha pasado"+s.comma()+". ¿Qué día te viene bien?")
	case tools.ErrBadArgs:
		return s.pick("Sorry"+s.comma()+", I didn't catch the date. Could you say it another way, e.g. \"next Wednesday\" or \"on the 20th\"?",
			"Perdona"+s.comma()+", no he entendido la fecha. ¿Puedes decirla de otra forma, p. ej. \"el próximo miércoles\" o \"el día 20\"?")
	case tools.ErrNotFound:
		return s.pick("I couldn't find that among your records"+s.comma()+". If you think that's wrong, reply \"agent\" and a person from the team will check.",
			"No lo encuentro en tus datos"+s.comma()+". Si crees que es un error, escribe \"agente\" y una persona del equipo lo revisará.")
	}
	// Unavailable, refused credentials, anything else: the system is out
	// of reach; say so plainly and offer what still works.
	return s.pick(
		"Sorry"+s.comma()+", I can't reach our booking system right now. Please try again in a few minutes, or reply \"agent\" to talk to a person from the team.",
		"Perdona"+s.comma()+", ahora mismo no puedo acceder a nuestro sistema de reservas. Inténtalo de nuevo en unos minutos o escribe \"agente\" para hablar con una persona del equipo.")
}

// Tool results.

func (s speaker) services(d tools.ServicesData, only []string) string {
	var b strings.Builder
	shown := d.Services
	if len(only) > 0 {
		shown = shown[:0:0]
		for _, sv := range d.Services {
			for _, o := range only {
				if sv.ID == o {
					shown = append(shown, sv)
				}
			}
		}
	}
	if len(shown) == 0 {
		return s.pick("We have no services listed at the moment"+s.comma()+".", "Ahora mismo no tenemos servicios publicados"+s.comma()+".")
	}
	if len(shown) == 1 && len(only) > 0 {
		sv := shown[0]
		line := sv.Name + s.pick(" takes ", " dura ") + s.duration(sv.DurationMinutes)
		if sv.Price != "" {
			line += s.pick(" and costs ", " y cuesta ") + sv.Price
		}
		if sv.Description != "" {
			line += ": " + strings.TrimRight(sv.Description, ".")
		}
		return line + ".\n" + s.pick("Would you like me to check available times?", "¿Quieres que mire los horarios libres?")
	}
	b.WriteString(s.pick("Here's what we offer"+s.comma()+":\n", "Esto es lo que ofrecemos"+s.comma()+":\n"))
	for _, sv := range shown {
		b.WriteString("• " + sv.Name + " — " + s.duration(sv.DurationMinutes))
		if sv.Price != "" {
			b.WriteString(", " + sv.Price)
		}
		b.WriteString("\n")
	}
	b.WriteString(s.pick("Would you like me to check available times for one of them?", "¿Quieres que mire los horarios libres de alguno?"))
	return b.String()
}

// slots phrases one day's free times, grouping services that share them.
// lead starts a sentence; otherwise the phrase continues one.
func (s speaker) slots(d tools.AvailabilityData, lead bool) string {
	type group struct {
		services []string
		times    []string
	}
	var groups []group
outer:
	for _, sv := range d.Services {
		if len(sv.Times) == 0 {
			continue
		}
		for i := range groups {
			if strings.Join(groups[i].times, ",") == strings.Join(sv.Times, ",") {
				groups[i].services = append(groups[i].services, sv.Service)
				continue outer
			}
		}
		groups = append(groups, group{services: []string{sv.Service}, times: sv.Times})
	}
	when := s.on(d.Day)
	if lead {
		when = capital(when)
	}
	if p := s.part(d.PartOfDay); p != "" {
		when += " " + p
	}
	if len(groups) == 1 {
		g := groups[0]
		return s.pick(
			fmt.Sprintf("%s these start times are free for a %s: %s.", when, s.or(g.services), s.list(g.times)),
			fmt.Sprintf("%s hay estos horarios libres para %s: %s.", when, s.or(g.services), s.list(g.times)))
	}
	var b strings.Builder
	b.WriteString(s.pick(when+" these start times are free:\n", when+" hay estos horarios libres:\n"))
	for _, g := range groups {
		b.WriteString("• " + s.list(g.services) + ": " + s.list(g.times) + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// availability phrases check_availability's result. standalone is a
// reply of its own (greeting the customer and saying where to book), not
// part of another.
func (s speaker) availability(d tools.AvailabilityData, standalone bool) string {
	var b strings.Builder
	switch {
	case d.Searched && !d.Empty():
		b.WriteString(s.pick("Here are the next free times"+s.comma()+". ", "Estos son los próximos horarios libres"+s.comma()+". "))
		b.WriteString(s.slots(d, true))
	case d.Searched || d.Empty() && d.Next == nil:
		return s.pick("Sorry"+s.comma()+", I can't see any free times in the next two weeks. Reply \"agent\" and a person from the team will help you find one.",
			"Perdona"+s.comma()+", no veo horarios libres en las próximas dos semanas. Escribe \"agente\" y una persona del equipo te ayudará.")
	case d.Empty():
		when := s.on(d.Day)
		if p := s.part(d.PartOfDay); p != "" {
			when += " " + p
		}
		b.WriteString(s.pick("Sorry"+s.comma()+", nothing is free "+when+", but ",
			"Perdona"+s.comma()+", "+when+" no hay nada libre, pero "))
		b.WriteString(s.slots(*d.Next, false))
	default:
		if s.name != "" && standalone {
			b.WriteString(s.pick("Sure, "+s.name+"! ", "¡Claro, "+s.name+"! "))
		}
		b.WriteString(s.slots(d, true))
	}
	if standalone {
		b.WriteString(s.pick("\nTo book one, use "+s.whereToBook()+".", "\nPara reservar, usa "+s.whereToBook()+"."))
	}
	return b.String()
}

func (s speaker) bookingLine(b tools.BookingInfo) string {
	return "• " + b.Service + " — " + s.relDay(b.At) + ", " + b.Start + "–" + b.End
}

// bookings phrases list_bookings' result; next answers "when is my next
// clean?" with the first booking only.
func (s speaker) bookings(d tools.BookingsData, next bool) string {
	var b strings.Builder
	past := d.When == "past"
	if next && !past && d.Date == "" && len(d.Bookings) > 0 {
		bk := d.Bookings[0]
		lead := s.pick("Your", "Tu")
		if s.name != "" {
			lead = s.name + s.pick(", your", ", tu")
		}
		return s.pick(
			fmt.Sprintf("%s next booking is a %s %s, %s–%s.", lead, bk.Service, s.on(bk.At), bk.Start, bk.End),
			fmt.Sprintf("%s próxima reserva es una %s %s, de %s a %s.", lead, bk.Service, s.on(bk.At), bk.Start, bk.End))
	}
	if len(d.Bookings) == 0 {
		switch {
		case d.Date != "":
			day, _ := time.ParseInLocation("2006-01-02", d.Date, s.today.Location())
			return s.pick("You have no booking "+s.on(day)+s.comma()+".", "No tienes ninguna reserva "+s.on(day)+s.comma()+".")
		case past:
			return s.pick("You have no past bookings with us yet"+s.comma()+".", "Todavía no tienes reservas anteriores"+s.comma()+".")
		}
		return s.pick("You have no upcoming bookings"+s.comma()+". Would you like me to check available times?",
			"No tienes reservas próximas"+s.comma()+". ¿Quieres que mire los horarios libres?")
	}
	n := len(d.Bookings)
	switch {
	case past:
		b.WriteString(s.pick("Here are your past bookings"+s.comma()+":\n", "Estas son tus reservas anteriores"+s.comma()+":\n"))
	case d.Date != "":
		b.WriteString(s.pick("Yes"+s.comma()+" — "+s.on(d.Bookings[0].At)+" you have:\n", "Sí"+s.comma()+": "+s.on(d.Bookings[0].At)+" tienes:\n"))
	case n == 1:
		b.WriteString(s.pick("You have 1 upcoming booking"+s.comma()+":\n", "Tienes 1 reserva próxima"+s.comma()+":\n"))
	default:
		b.WriteString(s.pick(fmt.Sprintf("You have %d upcoming bookings%s:\n", n, s.comma()), fmt.Sprintf("Tienes %d reservas próximas%s:\n", n, s.comma())))
	}
	for _, bk := range d.Bookings {
		b.WriteString(s.bookingLine(bk) + "\n")
	}
	if !past {
		b.WriteString(s.pick("If you need to cancel one, just tell me which.", "Si necesitas cancelar alguna, dime cuál."))
	}
	return strings.TrimRight(b.String(), "\n")
}

func (s speaker) describe(b tools.BookingInfo) string {
	return s.pick(
		fmt.Sprintf("your %s %s at %s", b.Service, s.on(b.At), b.Start),
		fmt.Sprintf("tu %s %s a las %s", b.Service, s.on(b.At), b.Start))
}

func (s speaker) cancel(d tools.CancelData, day time.Time) string {
	switch d.Stage {
	case tools.CancelConfirmNeeded:
		return s.pick(
			"Just to confirm"+s.comma()+": shall I cancel "+s.describe(*d.Booking)+"? Reply YES to cancel it or NO to keep it.",
			"Solo para confirmar"+s.comma()+": ¿cancelo "+s.describe(*d.Booking)+"? Responde SÍ para cancelarla o NO para mantenerla.")
	case tools.CancelChoose:
		var b strings.Builder
		b.WriteString(s.pick("You have more than one booking"+s.comma()+" — which one should I cancel?\n", "Tienes más de una reserva"+s.comma()+". ¿Cuál cancelo?\n"))
		for _, bk := range d.Candidates {
			b.WriteString(s.bookingLine(bk) + "\n")
		}
		b.WriteString(s.pick("Tell me the day, e.g. \"cancel the one on ", "Dime el día, p. ej. \"cancela la del ") + s.day(d.Candidates[0].At) + "\".")
		return b.String()
	case tools.CancelNone:
		if len(d.Candidates) == 0 {
			return s.pick("You have no upcoming bookings to cancel"+s.comma()+".", "No tienes reservas próximas que cancelar"+s.comma()+".")
		}
		var b strings.Builder
		if !day.IsZero() {
			b.WriteString(s.pick("I couldn't find a booking "+s.on(day)+s.comma()+". ", "No encuentro ninguna reserva "+s.on(day)+s.comma()+". "))
		}
		b.WriteString(s.pick("Your upcoming bookings are:\n", "Tus próximas reservas son:\n"))
		for _, bk := range d.Candidates {
			b.WriteString(s.bookingLine(bk) + "\n")
		}
		b.WriteString(s.pick("Which one would you like to cancel?", "¿Cuál quieres cancelar?"))
		return b.String()
	case tools.CancelDone:
		return s.pick("Done"+s.comma()+" — "+s.describe(*d.Booking)+" is cancelled.", "Hecho"+s.comma()+": "+s.describe(*d.Booking)+" está cancelada.")
	case tools.CancelAlreadyCancelled:
		return s.pick(capital(s.describe(*d.Booking))+" was already cancelled"+s.comma()+".",
			capital(s.describe(*d.Booking))+" ya estaba cancelada"+s.comma()+".")
	case tools.CancelRefused:
		var b strings.Builder
		b.WriteString(s.pick("Sorry"+s.comma()+", I can't cancel "+s.describe(*d.Booking)+".", "Perdona"+s.comma()+", no puedo cancelar "+s.describe(*d.Booking)+"."))
		if d.Reason != "" {
			b.WriteString(" " + d.Reason)
			if !strings.HasSuffix(d.Reason, ".") {
				b.WriteString(".")
			}
		}
		if d.Policy != "" && !strings.Contains(d.Reason, d.Policy) {
			b.WriteString(s.pick(" Our policy: ", " Nuestra política: ") + d.Policy)
		}
		b.WriteString(s.pick(" If you need help with it, reply \"agent\" and a person from the team will get back to you.",
			" Si necesitas ayuda, escribe \"agente\" y una persona del equipo te contestará."))
		return b.String()
	}
	return s.notUnderstood()
}

func (s speaker) kept() string {
	return s.pick("No problem"+s.comma()+" — I've kept your booking as it is.", "Sin problema"+s.comma()+", mantengo tu reserva.")
}

func (s speaker) account(d tools.AccountData) string {
	var b strings.Builder
	b.WriteString(s.pick("Here are your account details"+s.comma()+":\n", "Estos son los datos de tu cuenta"+s.comma()+":\n"))
	b.WriteString(s.pick("• Name: ", "• Nombre: ") + d.Name + "\n")
	if d.Email != "" {
		b.WriteString(s.pick("• Email: ", "• Correo: ") + d.Email + "\n")
	}
	if d.Phone != "" {
		b.WriteString(s.pick("• Phone: ", "• Teléfono: ") + d.Phone + "\n")
	}
	if d.Address != "" {
		b.WriteString(s.pick("• Address: ", "• Dirección: ") + d.Address + "\n")
	}
	if !d.Since.IsZero() {
		month := d.Since.Month().String()
		if s.es {
			month = monthsES[d.Since.Month()]
		}
		b.WriteString(s.pick("• Customer since: ", "• Cliente desde: ") + fmt.Sprintf("%s %d", month, d.Since.Year()) + "\n")
	}
	b.WriteString(s.pick("To change any of these, please use "+s.whereToBook()+".", "Para cambiar algo, usa "+s.whereToBook()+"."))
	return b.String()
}

func (s speaker) noSubscription() string {
	return s.pick("You don't have a subscription with us at the moment"+s.comma()+". Would you like to see our services?",
		"Ahora mismo no tienes ninguna suscripción"+s.comma()+". ¿Quieres ver nuestros servicios?")
}

// subscription phrases the plan. quota puts the sessions left first, for
// "how many bookings do I have left?".
func (s speaker) subscription(d tools.SubscriptionData, quota bool) string {
	period := d.Period
	if period == "" {
		period = "period"
	}
	sessions := s.pick(
		fmt.Sprintf("You have %d of %d sessions remaining this %s.", d.SessionsRemaining, d.SessionsPerPeriod, period),
		fmt.Sprintf("Te quedan %d de %d sesiones %s.", d.SessionsRemaining, d.SessionsPerPeriod, periodES(period)))
	plan := s.pick(
		fmt.Sprintf("Your subscription is %s (%s), %s.", d.Plan, d.Status, d.Price),
		fmt.Sprintf("Tu suscripción es %s (%s), %s.", d.Plan, statusES(d.Status), d.Price))
	payment := ""
	if d.NextPaymentDate != "" && !strings.EqualFold(d.Status, "cancelled") {
		payment = s.pick(
			fmt.Sprintf("Your next payment of %s is due %s.", d.NextPayment, s.on(d.NextPaymentDay)),
			fmt.Sprintf("Tu próximo pago de %s vence %s.", d.NextPayment, s.on(d.NextPaymentDay)))
	}
	lead := s.pick("Hi"+s.spaceName()+"! ", "¡Hola"+s.spaceName()+"! ")
	parts := []string{plan, sessions}
	if quota {
		parts = []string{sessions, plan}
	}
	if payment != "" {
		parts = append(parts, payment)
	}
	return lead + strings.Join(parts, " ")
}

// periodES says "this fortnight" in Spanish for the periods businesses
// use; others are quoted as the backend names them.
func periodES(p string) string {
	switch strings.ToLower(p) {
	case "fortnight":
		return "esta quincena"
	case "month":
		return "este mes"
	case "week":
		return "esta semana"
	case "year":
		return "este año"
	}
	return "en este periodo (" + p + ")"
}

func statusES(st string) string {
	switch strings.ToLower(st) {
	case "active":
		return "activa"
	case "paused":
		return "en pausa"
	case "cancelled":
		return "cancelada"
	}
	return st
}

func (s speaker) bookingRequest(avail string) string {
	lead := s.pick(
		"I'm sorry"+s.comma()+", I can't make new bookings here — you can book on "+s.whereToBook()+".",
		"Lo siento"+s.comma()+", no puedo hacer reservas nuevas por aquí; puedes reservar en "+s.whereToBook()+".")
	if avail == "" {
		return lead + s.pick(" I can check available times for you if you tell me the day.", " Si me dices el día, te miro los horarios libres.")
	}
	return lead + s.pick(" To help you choose: ", " Para ayudarte a elegir: ") + avail
}

// relDay is a date in a list: "today (Tuesday 10 March)", "tomorrow (…)"
// or just the date.
func (s speaker) relDay(t time.Time) string {
	switch daysBetween(s.today, t) {
	case 0, 1:
		return s.on(t)
	}
	return s.day(t)
}
