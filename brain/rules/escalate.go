package rules

import (
	"context"
	"strings"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/internal/nlp"
)

// HandoffRisk is the reason of a handoff Escalate made: the message named a
// risk (a disputed or unauthorised charge, an account taken over, a legal
// threat) that a person handles, never a tool.
const HandoffRisk = "risk"

// QueryEscalated is the query type of such a message.
const QueryEscalated = "escalated"

// RiskPhrases are what Escalate looks for by default, by category and
// language, in the normalized words of a message (lower case, accents
// folded, apostrophes joined: "didn't" is "didnt"). A tenant adds its own
// (tenants' brain.escalate).
var RiskPhrases = map[string]map[string][]string{
	"payment_dispute": {
		English: {"didnt authorize", "didnt authorise", "did not authorize", "did not authorise", "not authorized", "not authorised",
			"unauthorized", "unauthorised", "chargeback", "charge back", "dispute", "disputed", "fraud", "fraudulent",
			"refund", "refunded", "double charged", "charged twice", "never authorized"},
		Spanish: {"no autorice", "no he autorizado", "cargo no autorizado", "no reconozco", "fraude", "reembolso", "devolucion",
			"me cobraron dos veces"},
	},
	"account_takeover": {
		English: {"hacked", "account was stolen", "someone else logged", "someone logged into", "someone accessed", "not me who",
			"stole my", "identity theft"},
		Spanish: {"hackeado", "hackearon", "me robaron", "suplantacion", "robo de identidad"},
	},
	"legal": {
		English: {"lawyer", "attorney", "solicitor", "legal action", "take legal", "sue you", "sue your", "court", "lawsuit"},
		Spanish: {"abogado", "demanda", "denuncia", "accion legal", "tribunal"},
	},
}

// riskCategories is the order categories are tried in.
var riskCategories = []string{"payment_dispute", "account_takeover", "legal", "tenant"}

// Escalate wraps next, whichever brain it is: a message that names a risk
// goes to a person at once, with a summary, decided in code as
// ReadConfirmation decides a confirmation, and next is not asked (a model with tools must not
// answer "refund my last charge, I didn't authorize it" with subscription
// details). extra are a tenant's own phrases, category "tenant".
func Escalate(next brain.Brain, extra []string) brain.Brain {
	e := &escalating{next: next}
	add := func(cat, lang string, ps []string) {
		for _, p := range ps {
			if w := nlp.Words(p); len(w) > 0 {
				e.phrases = append(e.phrases, riskPhrase{cat: cat, lang: lang, words: w})
			}
		}
	}
	for _, cat := range riskCategories {
		for _, lang := range []string{English, Spanish} {
			add(cat, lang, RiskPhrases[cat][lang])
		}
	}
	add("tenant", "", extra)
	return e
}

type escalating struct {
	next    brain.Brain
	phrases []riskPhrase // in riskCategories order
}

type riskPhrase struct {
	cat, lang string // lang "": a tenant's phrase, any language
	words     []string
}

// risk is the category of risk text names ("" for none) and the language
// of the phrase that named it.
func (e *escalating) risk(text string) (cat, lang string) {
	words := nlp.Words(text)
	for _, p := range e.phrases {
		if hasWords(words, p.words) {
			return p.cat, p.lang
		}
	}
	return "", ""
}

// hasWords reports whether p occurs in words as consecutive whole words.
func hasWords(words, p []string) bool {
outer:
	for i := 0; i+len(p) <= len(words); i++ {
		for j := range p {
			if words[i+j] != p[j] {
				continue outer
			}
		}
		return true
	}
	return false
}

func (e *escalating) Answer(ctx context.Context, r brain.Request) (brain.Answer, error) {
	cat, phraseLang := e.risk(r.Text)
	if cat == "" {
		return e.next.Answer(ctx, r)
	}
	st := r.State
	st.Pending = nil // nothing proposed goes ahead behind the person's back
	text := "I've passed this to a person from the team straight away — they'll reply here as soon as they can."
	lang := st.Language
	if lang == "" {
		lang = phraseLang
	}
	if lang == "" {
		lang, _ = DetectLanguage(r.Text)
	}
	if lang == Spanish {
		text = "He pasado esto a una persona del equipo ahora mismo; te responderá por aquí lo antes posible."
	}
	st.History = brain.Remember(st.History, r.Text, text)
	return brain.Answer{
		Text:      text,
		QueryType: QueryEscalated,
		State:     st,
		Handoff: &brain.Handoff{Reason: HandoffRisk,
			Summary: "Escalated (" + strings.ReplaceAll(cat, "_", " ") + "): the customer wrote \u201c" + brain.Limit(r.Text, 300) + "\u201d"},
	}, nil
}
