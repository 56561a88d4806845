"""Airline tools on real records of the shipped database: each one's success and a refused case, and the
ground-truth actions of every test task replayed through them score 1.0."""

import json

import pytest

from envs.taubench.data import fresh_database, load_tasks, state_hash
from envs.taubench.airline import TOOLS, WRITES
from envs.taubench.reward import reward
from envs.taubench.tools import call

USER = "mia_li_3668"  # visa cards, two certificates (100, 250), reservations NO6JO3 (business, one passenger), ...


@pytest.fixture
def db():
    return fresh_database("airline")


def _run(db, name, **kwargs):
    return call(TOOLS, db, name, kwargs)


def _open_flight(db, cabin="economy", seats=1):
    """A (flight number, date, price) that can be booked in `cabin`."""
    return next((number, date, day["prices"][cabin]) for number, flight in db["flights"].items()
                for date, day in flight["dates"].items()
                if day["status"] == "available" and day["available_seats"][cabin] >= seats)


def test_there_are_the_fourteen_airline_tools_with_schemas():
    assert len(TOOLS) == 14 and WRITES < set(TOOLS)
    required = TOOLS["book_reservation"].schema()["function"]["parameters"]["required"]
    assert required == ["user_id", "origin", "destination", "flight_type", "cabin", "flights", "passengers",
                        "payment_methods", "total_baggages", "nonfree_baggages", "insurance"]


def test_lookups_find_real_records_and_refuse_unknown_ones(db):
    assert json.loads(_run(db, "get_user_details", user_id=USER))["reservations"][0] == "NO6JO3"
    assert _run(db, "get_user_details", user_id="nobody_1") == "Error: user not found"
    assert json.loads(_run(db, "get_reservation_details", reservation_id="NO6JO3"))["cabin"] == "business"
    assert _run(db, "get_reservation_details", reservation_id="ZZZZZZ") == "Error: user not found"  # upstream's words
    airports = json.loads(_run(db, "list_all_airports"))
    assert len(airports) == 20 and airports["JFK"] == "New York"
    assert _run(db, "list_all_airports", city="Boston").startswith("Error: list_all_airports")


def test_searches_list_available_direct_and_one_stop_flights(db):
    number, date, _ = _open_flight(db)
    flight = db["flights"][number]
    direct = json.loads(_run(db, "search_direct_flight", origin=flight["origin"], destination=flight["destination"], date=date))
    assert number in [f["flight_number"] for f in direct] and all(f["status"] == "available" for f in direct)
    assert json.loads(_run(db, "search_direct_flight", origin="JFK", destination="JFK", date=date)) == []
    onestop = json.loads(_run(db, "search_onestop_flight", origin="JFK", destination="SEA", date="2024-05-20"))
    assert onestop and all(a["destination"] == b["origin"] and a["origin"] == "JFK" and b["destination"] == "SEA"
                           for a, b in onestop)
    assert _run(db, "search_onestop_flight", origin="JFK", destination="SEA").startswith("Error: search_onestop_flight")


def test_booking_charges_its_payment_methods_and_refuses_a_wrong_total(db):
    number, date, price = _open_flight(db)
    flight = db["flights"][number]
    booking = dict(user_id=USER, origin=flight["origin"], destination=flight["destination"], flight_type="one_way",
                   cabin="economy", flights=[{"flight_number": number, "date": date}],
                   passengers=[{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
                   total_baggages=1, nonfree_baggages=1, insurance="yes")
    total = price + 30 + 50
    wrong = _run(db, "book_reservation", **booking, payment_methods=[{"payment_id": "credit_card_4421486", "amount": 1}])
    assert wrong == f"Error: payment amount does not add up, total price is {total}, but paid 1"
    assert _run(db, "book_reservation", **booking, payment_methods=[{"payment_id": "certificate_4856383",
                                                                     "amount": total}]).startswith("Error: not enough balance")
    paid = [{"payment_id": "certificate_7504069", "amount": 250}, {"payment_id": "credit_card_4421486", "amount": total - 250}]
    booked = json.loads(_run(db, "book_reservation", **booking, payment_methods=paid))
    assert booked["reservation_id"] == "HATHAT" and booked["flights"][0]["price"] == price
    user = db["users"][USER]
    assert "HATHAT" in user["reservations"] and "certificate_7504069" not in user["payment_methods"]  # used up
    assert json.loads(_run(db, "book_reservation", **booking, payment_methods=[
        {"payment_id": "credit_card_4421486", "amount": total}]))["reservation_id"] == "HATHAU"
    assert _run(db, "book_reservation", **{**booking, "user_id": "nobody_1"}, payment_methods=paid) == "Error: user not found"


def test_cancel_refunds_every_payment(db):
    cancelled = json.loads(_run(db, "cancel_reservation", reservation_id="NO6JO3"))
    assert cancelled["status"] == "cancelled" and cancelled["payment_history"][-1] == {"payment_id": "credit_card_1955700",
                                                                                      "amount": -2504}
    assert _run(db, "cancel_reservation", reservation_id="ZZZZZZ") == "Error: reservation not found"


def test_updates_change_bags_flights_and_passengers_and_refuse_certificates(db):
    bags = json.loads(_run(db, "update_reservation_baggages", reservation_id="NO6JO3", total_baggages=3,
                           nonfree_baggages=1, payment_id="credit_card_4421486"))
    assert bags["nonfree_baggages"] == 1 and bags["payment_history"][-1] == {"payment_id": "credit_card_4421486", "amount": 50}
    assert _run(db, "update_reservation_baggages", reservation_id="NO6JO3", total_baggages=3, nonfree_baggages=2,
                payment_id="certificate_4856383") == "Error: certificate cannot be used to update reservation"
    same = [{"flight_number": "HAT083", "date": "2024-05-16"}, {"flight_number": "HAT221", "date": "2024-05-16"}]
    kept = json.loads(_run(db, "update_reservation_flights", reservation_id="NO6JO3", cabin="business", flights=same,
                           payment_id="credit_card_4421486"))
    assert [f["price"] for f in kept["flights"]] == [483, 1991] and len(kept["payment_history"]) == 2  # nothing to pay
    assert _run(db, "update_reservation_flights", reservation_id="NO6JO3", cabin="business",
                flights=[{"flight_number": "HAT999", "date": "2024-05-16"}], payment_id="credit_card_4421486") == \
        "Error: flight HAT999 not found"
    renamed = json.loads(_run(db, "update_reservation_passengers", reservation_id="NO6JO3",
                              passengers=[{"first_name": "Mia", "last_name": "Lee", "dob": "1990-04-05"}]))
    assert renamed["passengers"][0]["last_name"] == "Lee"
    assert _run(db, "update_reservation_passengers", reservation_id="NO6JO3", passengers=[]) == \
        "Error: number of passengers does not match"


def test_certificates_calculate_think_and_transfer(db):
    assert _run(db, "send_certificate", user_id=USER, amount=150) == \
        f"Certificate certificate_3221322 added to user {USER} with amount 150."
    assert db["users"][USER]["payment_methods"]["certificate_3221322"]["amount"] == 150
    assert _run(db, "send_certificate", user_id="nobody_1", amount=150) == "Error: user not found"
    assert _run(db, "calculate", expression="483 + 1991") == "2474.0"
    assert _run(db, "calculate", expression="import os").startswith("Error")
    before = state_hash(db)
    assert _run(db, "think", thought="two certificates") == "" and state_hash(db) == before
    assert _run(db, "think").startswith("Error: think: missing")
    assert _run(db, "transfer_to_human_agents", summary="wants compensation") == "Transfer successful"
    assert _run(db, "transfer_to_human_agents").startswith("Error: transfer_to_human_agents: missing")


def test_replaying_the_ground_truth_scores_one_on_every_test_task_and_doing_nothing_zero():
    for task in load_tasks("airline", "test"):
        db = fresh_database("airline")
        results = [call(TOOLS, db, a.name, a.kwargs) for a in task.actions]
        assert not any(r.startswith("Error: unknown tool") for r in results), task.id
        assert reward(task, db, list(task.outputs), TOOLS).reward == 1.0, task.id
    task = next(t for t in load_tasks("airline", "test") if not t.outputs and any(a.name in WRITES for a in t.actions))
    untouched = reward(task, fresh_database("airline"), [], TOOLS)
    assert untouched.reward == 0.0 and untouched.state_matches is False
