"""What the agenda user says, in MultiWOZ customers' own phrasing: templates per dialogue act.

Each slot has phrases that attach to a noun ("a restaurant *in the north*") and clauses that
stand alone ("*it should be in the north*"); `{v}` is the goal's value, written verbatim so
an agent can copy it into a call. Words the agent uses to ask for a slot live here too, so
understanding and phrasing stay side by side. Data only: `envs/toolwoz/agenda.py` chooses.
"""

from __future__ import annotations

# How a request opens: a lead, then the domain's noun ("a {type}" when the goal's type is said with it).
LEADS = ["i am looking for", "i need", "i'm looking for", "can you help me find", "i would like to find"]
ALSO = ["i am also looking for", "i also need", "can you also help me find", "next, i need"]
NOUNS = {
    "restaurant": ["a restaurant", "a place to eat", "a place to dine"],
    "hotel": ["a place to stay", "a hotel", "somewhere to stay"],
    "attraction": ["an attraction", "something to do in town", "a place to go"],
    "train": ["a train", "a train ticket"],
}
TYPED_NOUN = {"hotel": "a {v}", "attraction": "a {v}"}

PHRASES = {  # slot -> phrases after a noun
    ("restaurant", "food"): ["serving {v} food", "that serves {v} food", "with {v} food"],
    ("restaurant", "pricerange"): ["in the {v} price range", "that is {v}", "in the {v} range"],
    ("restaurant", "area"): ["in the {v}", "in the {v} of town", "in the {v} part of town"],
    ("restaurant", "name"): ["called {v}", "named {v}"],
    ("hotel", "area"): ["in the {v}", "in the {v} part of town", "located in the {v}"],
    ("hotel", "pricerange"): ["in the {v} price range", "that is {v}", "in the {v} range"],
    ("hotel", "stars"): ["with a {v} star rating", "rated {v} stars", "with {v} stars"],
    ("hotel", "type"): ["of type {v}", "that is a {v}"],
    ("hotel", "parking"): {"yes": ["with free parking", "that has free parking", "that includes free parking"],
                           "no": ["without free parking", "that does not need free parking"]},
    ("hotel", "internet"): {"yes": ["with free wifi", "that has free internet", "that includes free wifi"],
                            "no": ["without free wifi", "that does not need internet"]},
    ("hotel", "name"): ["called {v}", "named {v}"],
    ("attraction", "type"): ["of type {v}", "that is a {v}"],
    ("attraction", "area"): ["in the {v}", "in the {v} of town", "in the {v} area"],
    ("attraction", "name"): ["called {v}", "named {v}"],
    ("train", "departure"): ["from {v}", "departing from {v}", "leaving from {v}"],
    ("train", "destination"): ["to {v}", "going to {v}", "arriving in {v}"],
    ("train", "day"): ["on {v}", "for {v}", "that runs on {v}"],
    ("train", "leaveAt"): ["leaving after {v}", "that leaves after {v}", "departing after {v}"],
    ("train", "arriveBy"): ["arriving by {v}", "that arrives by {v}", "that gets there by {v}"],
    ("restaurant", "people"): ["for {v} people", "for a party of {v}"],
    ("restaurant", "day"): ["on {v}"],
    ("restaurant", "time"): ["at {v}", "around {v}"],
    ("hotel", "people"): ["for {v} people", "for {v} guests"],
    ("hotel", "day"): ["starting {v}", "starting on {v}", "from {v}"],
    ("hotel", "stay"): ["for {v} nights", "for a stay of {v} nights"],
    ("train", "people"): ["for {v} people", "for {v} passengers"],
}

CLAUSES = {  # slot -> standalone clauses, for later turns, answers and corrections
    ("restaurant", "food"): ["i would like {v} food", "it should serve {v} food", "i'm in the mood for {v} food"],
    ("restaurant", "pricerange"): ["it should be in the {v} price range", "i want something {v}",
                                   "i'd like it to be {v}"],
    ("restaurant", "area"): ["it should be in the {v}", "i'd like it to be in the {v}", "i prefer the {v} of town"],
    ("restaurant", "name"): ["the restaurant is called {v}", "its name is {v}"],
    ("hotel", "area"): ["it should be in the {v}", "i'd like to stay in the {v}", "i prefer the {v} part of town"],
    ("hotel", "pricerange"): ["it should be in the {v} price range", "i want something {v}",
                              "i'd like it to be {v}"],
    ("hotel", "stars"): ["it should have a {v} star rating", "i want a {v} star place", "it should be rated {v} stars"],
    ("hotel", "type"): ["it should be a {v}", "i would prefer a {v}", "i'd like to stay at a {v}"],
    ("hotel", "parking"): {"yes": ["it should have free parking", "i need free parking", "free parking, please"],
                           "no": ["it does not need free parking", "i don't need free parking"]},
    ("hotel", "internet"): {"yes": ["it should have free wifi", "i need free internet", "free wifi, please"],
                            "no": ["it does not need free wifi", "i don't need internet"]},
    ("hotel", "name"): ["the hotel is called {v}", "its name is {v}"],
    ("attraction", "type"): ["i'm interested in a {v}", "it should be a {v}", "i'd like to see a {v}"],
    ("attraction", "area"): ["it should be in the {v}", "i'd like it to be in the {v}", "somewhere in the {v}"],
    ("attraction", "name"): ["the attraction is called {v}", "its name is {v}"],
    ("train", "departure"): ["i will be departing from {v}", "i'm leaving from {v}", "i need to leave from {v}"],
    ("train", "destination"): ["i'm going to {v}", "i need to get to {v}", "my destination is {v}"],
    ("train", "day"): ["i will be travelling on {v}", "i need to travel on {v}", "it should be on {v}"],
    ("train", "leaveAt"): ["i want to leave after {v}", "it should leave after {v}", "i'd like to depart after {v}"],
    ("train", "arriveBy"): ["i need to arrive by {v}", "it should arrive by {v}", "i have to be there by {v}"],
}

BOOK_REQUESTS = {  # accepting an offer and asking for the booking: the details follow
    "restaurant": ["that sounds good. please book a table", "great, can you book it", "yes, please make a reservation"],
    "hotel": ["that sounds good. please book it", "great, can you book it", "yes, please make a reservation"],
    "train": ["that works. please book it", "great, can you book it", "yes, please book that train"],
}
ACCEPT = ["that sounds perfect, thank you.", "great, that is what i was looking for.", "sounds good, thanks.",
          "perfect, thank you."]
REJECT = ["no, that won't work.", "that's not what i want.", "hmm, no.", "i'm afraid that doesn't suit me."]
SUGGEST = ["do you have any suggestions?", "what can you find?", "could you recommend one?",
           "what do you have available?"]
BOOK_NOW = ["could you book it for me, please?", "can you make the booking now?", "please go ahead and book it."]
RETRY = ["could you check again?", "can you try searching again?", "are you sure? please check again."]
LATER = ["let's come back to that later.", "never mind that for now.", "let's leave that for the moment."]
NO_PREFERENCE = ["i don't have a preference.", "it doesn't matter.", "any is fine.", "i don't mind."]
GOODBYE = ["that is all i need, thank you. goodbye.", "thank you, that will be all.", "great, thanks for your help!",
           "thanks, that's everything. bye."]
CHATTER = ["i'm planning a trip to cambridge.", "it's my first time in town.", "i'm visiting with my family.",
           "i've heard great things about cambridge."]
PLEASE = "please"

# How an agent asks for a slot (matched in its questions), per domain; book slots included.
REQUEST_WORDS = {
    "food": r"food|cuisine",
    "pricerange": r"price|budget|expensive|cheap",
    "area": r"\barea|part of (the )?(town|city)|side of town|location|where in",
    "name": r"\bname\b|particular (place|restaurant|hotel|attraction)",
    "stars": r"\bstars?\b|rating",
    "type": r"\b(type|kind|sort) of (place|hotel|attraction|accommodation)|what (type|kind)\b(?! of (food|cuisine))|guest ?house or|hotel or",
    "parking": r"parking",
    "internet": r"internet|wi-?fi",
    "departure": r"depart(ing|ure)? from|leaving from|from where|where (are|will) you (be )?(departing|leaving|coming)|departure|starting",
    "destination": r"destination|going to|heading|travel(l)?ing to|where to|where (are|will) you (be )?(going|travel)",
    "day": r"\bday\b|\bwhen\b|\bdate\b",
    "leaveAt": r"\bleave|depart(ure)? time|departing",
    "arriveBy": r"arriv",
    "people": r"how many|people|\bparty\b|guests|persons|tickets",
    "time": r"what time|\btime\b",
    "stay": r"how long|nights|how many days|\bstay\b",
}
