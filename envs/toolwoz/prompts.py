"""What ToolWOZ's agent and a model customer are told. Apart from the domain so that the embedded model, trained on
these words, depends on them and not on the rest of the domain (its cache key is its import closure)."""

from formats import react

INSTRUCTIONS = ("You are a travel agent helping a customer book restaurants, hotels, attractions and trains in Cambridge. "
                "Use the tools to find and book things; never answer from your own knowledge.")
COMPACT_INSTRUCTIONS = "You are a travel agent."  # the embedded model's prompt: its context is short
AGENT_TITLE = "a travel agent"

REACT_GUIDANCE = """
# Rules
- Only use the APIs and parameters listed below; leave out parameters you do not know.
- Search before you book, and book with the exact name (or trainID) the search returned.
- Searches return at most one matching row; give every constraint the customer stated.
- If an API returns an ERROR, re-read its definition and fix the call.

# Example
customer: I need a cheap restaurant in the north.
PLAN The customer wants a cheap restaurant in the north; I will search. {end} APICALL {{"name": "search_restaurant", "parameters": {{"pricerange": "cheap", "area": "north"}}}} {end}
{ret} name=royal spice, area=north, pricerange=cheap, food=indian
PLAN I found one; I will tell the customer. {end} SPEAK Royal Spice is a cheap Indian restaurant in the north. Shall I book it? {end}
""".format(end=react.END, ret=react.APIRETURN)
