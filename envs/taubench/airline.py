"""tau-bench airline: the 14 tools an airline agent has, over the users / flights / reservations database.

Names, arguments, result texts and database changes follow upstream tau-bench exactly (new ids
included: reservations HATHAT, HATHAU, HATHAV and certificates 3221322..4 in turn), because the
reward replays the ground-truth actions and compares database hashes. Refusals come back as
"Error: ..." results (and `tools.call` turns an exception, such as a flight without a date, into
one, as upstream's environment does). calculate, think and transfer_to_human_agents are retail's.
"""

from __future__ import annotations

import copy
from typing import Any

from envs.taubench import retail
from envs.taubench.tools import Tool, dumps, tool

TOOLS: dict[str, Tool] = {name: retail.TOOLS[name] for name in ("calculate", "think", "transfer_to_human_agents")}
WRITES = frozenset({"book_reservation", "cancel_reservation", "send_certificate", "update_reservation_baggages",
                    "update_reservation_flights", "update_reservation_passengers"})  # the tools that may change the database

STRING = {"type": "string"}
USER_ID = {"type": "string", "description": "The user id, such as 'sara_doe_496'."}
RESERVATION_ID = {"type": "string", "description": "The reservation id, such as 'ZFA04Y'."}
AIRPORT = {"type": "string", "description": "An airport's three-letter IATA code, such as 'JFK'."}
DATE = {"type": "string", "description": "A date as 'YYYY-MM-DD', such as '2024-05-01'."}
CABIN = {"type": "string", "enum": ["basic_economy", "economy", "business"]}
FLIGHTS = {"type": "array", "description": "Every flight of the reservation, changed or not.",
           "items": {"type": "object", "properties": {"flight_number": {"type": "string", "description": "Such as 'HAT001'."},
                                                      "date": DATE}, "required": ["flight_number", "date"]}}
PASSENGERS = {"type": "array", "description": "Each passenger's name and date of birth ('YYYY-MM-DD').",
              "items": {"type": "object", "properties": {"first_name": STRING, "last_name": STRING, "dob": DATE},
                        "required": ["first_name", "last_name", "dob"]}}
PAYMENT_ID = {"type": "string", "description": "A payment id from the user's profile, such as 'credit_card_7815826', "
                                               "'gift_card_7815826' or 'certificate_7815826'."}
AIRPORTS = {"SFO": "San Francisco", "JFK": "New York", "LAX": "Los Angeles", "ORD": "Chicago", "DFW": "Dallas",
            "DEN": "Denver", "SEA": "Seattle", "ATL": "Atlanta", "MIA": "Miami", "BOS": "Boston", "PHX": "Phoenix",
            "IAH": "Houston", "LAS": "Las Vegas", "MCO": "Orlando", "EWR": "Newark", "CLT": "Charlotte",
            "MSP": "Minneapolis", "DTW": "Detroit", "PHL": "Philadelphia", "LGA": "LaGuardia"}


def _priced(db: dict[str, Any], flight: dict[str, Any], cabin: str, seats: int) -> str | None:
    """Fill a requested flight's price, origin and destination from the schedule, or say why it cannot be booked
    (the checks and the keys they read in upstream's order, so a malformed flight fails as upstream's does)."""
    number = flight["flight_number"]
    schedule = db["flights"].get(number)
    if schedule is None:
        return f"Error: flight {number} not found"
    date = flight["date"]
    if date not in schedule["dates"]:
        return f"Error: flight {number} not found on date {date}"
    day = schedule["dates"][date]
    if day["status"] != "available":
        return f"Error: flight {number} not available on date {date}"
    if day["available_seats"][cabin] < seats:
        return f"Error: not enough seats on flight {number}"
    flight.update(price=day["prices"][cabin], origin=schedule["origin"], destination=schedule["destination"])
    return None


def _charge_method(db: dict[str, Any], reservation: dict[str, Any], payment_id: str, amount: float) -> dict[str, Any] | str:
    """The payment method a reservation change is charged to, or why it cannot be (certificates never can)."""
    method = db["users"][reservation["user_id"]]["payment_methods"].get(payment_id)
    if method is None:
        return "Error: payment method not found"
    if method["source"] == "certificate":
        return "Error: certificate cannot be used to update reservation"
    if method["source"] == "gift_card" and method["amount"] < amount:
        return "Error: gift card balance is not enough"
    return method


def _charge(reservation: dict[str, Any], method: dict[str, Any], payment_id: str, amount: float) -> None:
    if method["source"] == "gift_card":
        method["amount"] -= amount
    if amount != 0:
        reservation["payment_history"].append({"payment_id": payment_id, "amount": amount})


@tool(TOOLS, "Book a reservation.",
      user_id=USER_ID, origin=AIRPORT, destination=AIRPORT,
      flight_type={"type": "string", "enum": ["one_way", "round_trip"]}, cabin=CABIN,
      flights={**FLIGHTS, "description": "Each flight of the trip."}, passengers=PASSENGERS,
      payment_methods={"type": "array", "description": "How the total is paid: payment ids from the user's profile and "
                                                       "amounts that add up to the price.",
                       "items": {"type": "object", "properties": {"payment_id": PAYMENT_ID, "amount": {"type": "number"}},
                                 "required": ["payment_id", "amount"]}},
      total_baggages={"type": "integer", "description": "Checked bags in the reservation."},
      nonfree_baggages={"type": "integer", "description": "Checked bags that are paid for (50 each)."},
      insurance={"type": "string", "enum": ["yes", "no"], "description": "Travel insurance (30 per passenger)."})
def book_reservation(db: dict[str, Any], user_id: str, origin: str, destination: str, flight_type: str, cabin: str,
                     flights: list[dict[str, Any]], passengers: list[dict[str, Any]], payment_methods: list[dict[str, Any]],
                     total_baggages: int, nonfree_baggages: int, insurance: str) -> str:
    user = db["users"].get(user_id)
    if user is None:
        return "Error: user not found"
    reservation_id = next((i for i in ("HATHAT", "HATHAU") if i not in db["reservations"]), "HATHAV")
    reservation = {"reservation_id": reservation_id, "user_id": user_id, "origin": origin, "destination": destination,
                   "flight_type": flight_type, "cabin": cabin, "flights": copy.deepcopy(flights), "passengers": passengers,
                   "payment_history": payment_methods, "created_at": "2024-05-15T15:00:00",
                   "total_baggages": total_baggages, "nonfree_baggages": nonfree_baggages, "insurance": insurance}
    total = 0
    for flight in reservation["flights"]:
        if (refused := _priced(db, flight, cabin, len(passengers))) is not None:
            return refused
        total += flight["price"] * len(passengers)
    if insurance == "yes":
        total += 30 * len(passengers)
    total += 50 * nonfree_baggages
    for payment in payment_methods:
        method = user["payment_methods"].get(payment["payment_id"])
        if method is None:
            return f"Error: payment method {payment['payment_id']} not found"
        if method["source"] in ("gift_card", "certificate") and method["amount"] < payment["amount"]:
            return f"Error: not enough balance in payment method {payment['payment_id']}"
    paid = sum(payment["amount"] for payment in payment_methods)
    if paid != total:
        return f"Error: payment amount does not add up, total price is {total}, but paid {paid}"
    for payment in payment_methods:
        method = user["payment_methods"][payment["payment_id"]]
        if method["source"] == "gift_card":
            method["amount"] -= payment["amount"]
        elif method["source"] == "certificate":  # a certificate is used up whole
            del user["payment_methods"][payment["payment_id"]]
    db["reservations"][reservation_id] = reservation
    user["reservations"].append(reservation_id)
    return dumps(reservation)


@tool(TOOLS, "Cancel the whole reservation.", reservation_id=RESERVATION_ID)
def cancel_reservation(db: dict[str, Any], reservation_id: str) -> str:
    reservation = db["reservations"].get(reservation_id)
    if reservation is None:
        return "Error: reservation not found"
    refunds = [{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in reservation["payment_history"]]
    reservation["payment_history"].extend(refunds)
    reservation["status"] = "cancelled"
    return dumps(reservation)


@tool(TOOLS, "Get the details of a reservation.", reservation_id=RESERVATION_ID)
def get_reservation_details(db: dict[str, Any], reservation_id: str) -> str:
    reservation = db["reservations"].get(reservation_id)
    return dumps(reservation) if reservation is not None else "Error: user not found"  # upstream's wording


@tool(TOOLS, "Get the details of a user: profile, payment methods, reservations.", user_id=USER_ID)
def get_user_details(db: dict[str, Any], user_id: str) -> str:
    user = db["users"].get(user_id)
    return dumps(user) if user is not None else "Error: user not found"


@tool(TOOLS, "List all airports and their cities.")
def list_all_airports(db: dict[str, Any]) -> str:
    return dumps(AIRPORTS)


@tool(TOOLS, "Search direct flights between two airports on a date.", origin=AIRPORT, destination=AIRPORT, date=DATE)
def search_direct_flight(db: dict[str, Any], origin: str, destination: str, date: str) -> str:
    found = []
    for flight in db["flights"].values():
        if flight["origin"] == origin and flight["destination"] == destination and date in flight["dates"] \
                and flight["dates"][date]["status"] == "available":
            found.append({**{k: v for k, v in flight.items() if k != "dates"}, **flight["dates"][date]})
    return dumps(found)


@tool(TOOLS, "Search flights with one stop between two airports on a date.", origin=AIRPORT, destination=AIRPORT, date=DATE)
def search_onestop_flight(db: dict[str, Any], origin: str, destination: str, date: str) -> str:
    found = []
    for first in db["flights"].values():
        if first["origin"] != origin:
            continue
        for second in db["flights"].values():
            if second["destination"] != destination or first["destination"] != second["origin"]:
                continue
            overnight = "+1" in first["scheduled_arrival_time_est"]
            date2 = f"2024-05-{int(date[-2:]) + 1}" if overnight else date  # upstream's calendar: May 2024, unpadded
            if first["scheduled_arrival_time_est"] > second["scheduled_departure_time_est"]:
                continue
            if date in first["dates"] and date2 in second["dates"] and first["dates"][date]["status"] == "available" \
                    and second["dates"][date2]["status"] == "available":
                # upstream shows the second leg's status and prices on the first leg's date (an upstream quirk, kept)
                found.append([{**{k: v for k, v in first.items() if k != "dates"}, **first["dates"][date], "date": date},
                              {**{k: v for k, v in second.items() if k != "dates"}, **second["dates"][date], "date": date2}])
    return dumps(found)


@tool(TOOLS, "Send a certificate to a user. Be careful!", user_id=USER_ID,
      amount={"type": "number", "description": "The certificate's amount."})
def send_certificate(db: dict[str, Any], user_id: str, amount: float) -> str:
    user = db["users"].get(user_id)
    if user is None:
        return "Error: user not found"
    for number in (3221322, 3221323, 3221324):  # upstream assumes at most three per task
        payment_id = f"certificate_{number}"
        if payment_id not in user["payment_methods"]:
            user["payment_methods"][payment_id] = {"source": "certificate", "amount": amount, "id": payment_id}
            return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
    return "Error: too many certificates sent to this user"  # upstream returns None here: not a text


@tool(TOOLS, "Update the baggage information of a reservation.", reservation_id=RESERVATION_ID,
      total_baggages={"type": "integer", "description": "The new number of checked bags."},
      nonfree_baggages={"type": "integer", "description": "The new number of paid checked bags (50 each)."},
      payment_id=PAYMENT_ID)
def update_reservation_baggages(db: dict[str, Any], reservation_id: str, total_baggages: int, nonfree_baggages: int,
                                payment_id: str) -> str:
    reservation = db["reservations"].get(reservation_id)
    if reservation is None:
        return "Error: reservation not found"
    price = 50 * max(0, nonfree_baggages - reservation["nonfree_baggages"])
    method = _charge_method(db, reservation, payment_id, price)
    if isinstance(method, str):
        return method
    reservation["total_baggages"], reservation["nonfree_baggages"] = total_baggages, nonfree_baggages
    _charge(reservation, method, payment_id, price)
    return dumps(reservation)


@tool(TOOLS, "Update the flights of a reservation.", reservation_id=RESERVATION_ID, cabin=CABIN, flights=FLIGHTS,
      payment_id=PAYMENT_ID)
def update_reservation_flights(db: dict[str, Any], reservation_id: str, cabin: str, flights: list[dict[str, Any]],
                               payment_id: str) -> str:
    reservation = db["reservations"].get(reservation_id)
    if reservation is None:
        return "Error: reservation not found"
    seats, flights, total = len(reservation["passengers"]), copy.deepcopy(flights), 0
    for flight in flights:
        kept = next((f for f in reservation["flights"] if f["flight_number"] == flight["flight_number"]
                     and f["date"] == flight["date"] and cabin == reservation["cabin"]), None)
        if kept is not None:  # an unchanged flight keeps the price it was booked at
            flight.update(price=kept["price"], origin=kept["origin"], destination=kept["destination"])
        elif (refused := _priced(db, flight, cabin, seats)) is not None:
            return refused
        total += flight["price"] * seats
    total -= sum(f["price"] for f in reservation["flights"]) * seats
    method = _charge_method(db, reservation, payment_id, total)
    if isinstance(method, str):
        return method
    reservation["flights"] = flights  # seats are not updated in the schedule, as upstream
    _charge(reservation, method, payment_id, total)
    return dumps(reservation)


@tool(TOOLS, "Update the passengers of a reservation (the same number of passengers).", reservation_id=RESERVATION_ID,
      passengers=PASSENGERS)
def update_reservation_passengers(db: dict[str, Any], reservation_id: str, passengers: list[dict[str, Any]]) -> str:
    reservation = db["reservations"].get(reservation_id)
    if reservation is None:
        return "Error: reservation not found"
    if len(passengers) != len(reservation["passengers"]):
        return "Error: number of passengers does not match"
    reservation["passengers"] = passengers
    return dumps(reservation)
