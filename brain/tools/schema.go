package tools

import "encoding/json"

// Definition is a tool as a model is told about it: an OpenAI function
// definition (name, description, JSON Schema of the arguments). The
// schemas have no profile or customer field on purpose: who the customer
// is comes from the session.
type Definition struct {
	Name        string
	Description string
	Parameters  json.RawMessage
}

const noArgs = `{"type":"object","properties":{},"additionalProperties":false}`

// Definitions lists every tool for a model, in a stable order.
func Definitions() []Definition { return definitions }

var definitions = []Definition{
	{
		Name:        ListServices,
		Description: "List the services the business offers, with duration and price.",
		Parameters:  json.RawMessage(noArgs),
	},
	{
		Name: CheckAvailability,
		Description: "Check the free start times for a service on a day. Works without sign-in. " +
			"If the day has no free times, the result includes the next day that has some.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "service": {"type": "string", "description": "Service name or id, e.g. \"Deep Clean\". Omit for every service."},
    "date": {"type": "string", "description": "Day to check, YYYY-MM-DD in the business's time zone. Omit for the next day with free times."},
    "part_of_day": {"type": "string", "enum": ["morning", "afternoon", "evening"], "description": "Only times in this part of the day."}
  },
  "additionalProperties": false
}`),
	},
	{
		Name:        ListBookings,
		Description: "List the signed-in customer's bookings (upcoming by default, soonest first; or past). Each has an id for cancel_booking.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "when": {"type": "string", "enum": ["upcoming", "past"]},
    "date": {"type": "string", "description": "Only bookings on this day, YYYY-MM-DD."}
  },
  "additionalProperties": false
}`),
	},
	{
		Name: CancelBooking,
		Description: "Cancel one of the signed-in customer's upcoming bookings, in two steps. " +
			"First call without confirm: nothing is cancelled; the result says which booking would be, and you must ask the customer to confirm. " +
			"Only when the customer has replied yes on a later message, call again with confirm=true. " +
			"Name the booking by booking_id (from list_bookings) or by date.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "booking_id": {"type": "string", "description": "Id of the booking, from list_bookings."},
    "date": {"type": "string", "description": "Day of the booking, YYYY-MM-DD, when the id is not known."},
    "service": {"type": "string", "description": "Service name, to pick between bookings on the same day."},
    "confirm": {"type": "boolean", "description": "True only after the customer confirmed the cancellation proposed earlier."}
  },
  "additionalProperties": false
}`),
	},
	{
		Name:        AccountInfo,
		Description: "The signed-in customer's account details: name, masked email and phone, address, member since.",
		Parameters:  json.RawMessage(noArgs),
	},
	{
		Name: SubscriptionInfo,
		Description: "The signed-in customer's subscription: plan, status, price, next payment date and amount, " +
			"sessions per period and sessions remaining (\"how many bookings do I have left\").",
		Parameters: json.RawMessage(noArgs),
	},
	{
		Name:        Help,
		Description: "What the assistant can and cannot do, and how to book.",
		Parameters:  json.RawMessage(noArgs),
	},
	{
		Name: HandoffToHuman,
		Description: "Hand the conversation to a person from the team, when the customer asks for a person " +
			"or needs something the tools cannot do. The assistant stops answering afterwards.",
		Parameters: json.RawMessage(`{
  "type": "object",
  "properties": {
    "summary": {"type": "string", "description": "One or two sentences for the agent: what the customer needs."}
  },
  "required": ["summary"],
  "additionalProperties": false
}`),
	},
}
