"""Airline tools on real records of the shipped database: each one's success and a refused (or malformed) call,
the ground-truth actions of every test task replayed through them score 1.0, and they answer and change the
database exactly as upstream tau-bench's own tool classes do."""

import copy
import importlib
import json
import marshal
import sys
import types

import pytest

from envs.taubench.airline import TOOLS, WRITES
from envs.taubench.data import fresh_database, load_tasks, state_hash
from envs.taubench.tools import call
from envs.toolwoz.data import package_file

USER = "mia_li_3668"  # visa cards, two certificates (100, 250), reservations NO6JO3 (business, one passenger), ...
GIFTED = "mei_hernandez_8984"  # gift card 5309492 (98 left), reservation 1AKIA8 (economy, two passengers, no paid bags)


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


def _booking(db):
    number, date, price = _open_flight(db)
    flight = db["flights"][number]
    return price, dict(user_id=USER, origin=flight["origin"], destination=flight["destination"], flight_type="one_way",
                       cabin="economy", flights=[{"flight_number": number, "date": date}],
                       passengers=[{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
                       total_baggages=1, nonfree_baggages=1, insurance="yes")


def test_there_are_the_fourteen_airline_tools_with_schemas():
    assert len(TOOLS) == 14 and WRITES < set(TOOLS)
    required = TOOLS["book_reservation"].schema()["function"]["parameters"]["required"]
    assert required == ["user_id", "origin", "destination", "flight_type", "cabin", "flights", "passengers",
                        "payment_methods", "total_baggages", "nonfree_baggages", "insurance"]
    assert TOOLS["list_all_airports"].parameters["required"] == []
    from envs.taubench import retail
    assert all(TOOLS[name] is retail.TOOLS[name] for name in ("calculate", "think", "transfer_to_human_agents"))


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
    assert _run(db, "search_direct_flight", origin="JFK", destination="SEA") == \
        "Error: search_direct_flight: missing a required argument: 'date'"
    onestop = json.loads(_run(db, "search_onestop_flight", origin="JFK", destination="SEA", date="2024-05-20"))
    assert onestop and all(a["destination"] == b["origin"] and a["origin"] == "JFK" and b["destination"] == "SEA"
                           for a, b in onestop)
    assert _run(db, "search_onestop_flight", origin="JFK", destination="SEA").startswith("Error: search_onestop_flight")
    # after an overnight first leg upstream reads the day from the date's last two characters: a word is an error
    assert _run(db, "search_onestop_flight", origin="SFO", destination="JFK", date="tomorrow") == \
        "Error: invalid literal for int() with base 10: 'ow'"


def test_booking_charges_its_payment_methods_and_refuses_a_wrong_total(db):
    price, booking = _booking(db)
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


def test_malformed_nested_arguments_are_errors_worded_as_upstream_and_change_nothing(db):
    _, booking = _booking(db)
    before = state_hash(db)
    paid = [{"payment_id": "credit_card_4421486", "amount": 1000}]
    assert _run(db, "book_reservation", **{**booking, "cabin": "first"}, payment_methods=paid) == "Error: 'first'"
    undated = [{"flight_number": booking["flights"][0]["flight_number"]}]
    assert _run(db, "book_reservation", **{**booking, "flights": undated}, payment_methods=paid) == "Error: 'date'"
    assert _run(db, "book_reservation", **{**booking, "flights": [{"flight_number": "HAT999"}]},
                payment_methods=paid) == "Error: flight HAT999 not found"  # upstream reads the date after the number
    assert _run(db, "update_reservation_baggages", reservation_id="NO6JO3", total_baggages="3", nonfree_baggages="1",
                payment_id="credit_card_4421486") == "Error: unsupported operand type(s) for -: 'str' and 'int'"
    assert state_hash(db) == before


def test_cancel_refunds_every_payment(db):
    cancelled = json.loads(_run(db, "cancel_reservation", reservation_id="NO6JO3"))
    assert cancelled["status"] == "cancelled" and cancelled["payment_history"][-1] == {"payment_id": "credit_card_1955700",
                                                                                      "amount": -2504}
    assert _run(db, "cancel_reservation", reservation_id="ZZZZZZ") == "Error: reservation not found"


def test_baggage_updates_charge_new_paid_bags_to_a_card_or_gift_card_never_a_certificate(db):
    bags = json.loads(_run(db, "update_reservation_baggages", reservation_id="NO6JO3", total_baggages=3,
                           nonfree_baggages=1, payment_id="credit_card_4421486"))
    assert bags["nonfree_baggages"] == 1 and bags["payment_history"][-1] == {"payment_id": "credit_card_4421486", "amount": 50}
    assert _run(db, "update_reservation_baggages", reservation_id="NO6JO3", total_baggages=3, nonfree_baggages=2,
                payment_id="certificate_4856383") == "Error: certificate cannot be used to update reservation"
    assert _run(db, "update_reservation_baggages", reservation_id="1AKIA8", total_baggages=3, nonfree_baggages=2,
                payment_id="gift_card_5309492") == "Error: gift card balance is not enough"  # 100 > 98
    json.loads(_run(db, "update_reservation_baggages", reservation_id="1AKIA8", total_baggages=2, nonfree_baggages=1,
                    payment_id="gift_card_5309492"))
    assert db["users"][GIFTED]["payment_methods"]["gift_card_5309492"]["amount"] == 48


def test_flight_and_passenger_updates(db):
    same = [{"flight_number": "HAT083", "date": "2024-05-16"}, {"flight_number": "HAT221", "date": "2024-05-16"}]
    kept = json.loads(_run(db, "update_reservation_flights", reservation_id="NO6JO3", cabin="business", flights=same,
                           payment_id="credit_card_4421486"))
    assert [f["price"] for f in kept["flights"]] == [483, 1991] and len(kept["payment_history"]) == 1  # nothing to pay
    economy = json.loads(_run(db, "update_reservation_flights", reservation_id="NO6JO3", cabin="economy", flights=same,
                              payment_id="credit_card_4421486"))
    prices = [db["flights"][f["flight_number"]]["dates"]["2024-05-16"]["prices"]["economy"] for f in same]
    assert [f["price"] for f in economy["flights"]] == prices
    assert economy["payment_history"][-1] == {"payment_id": "credit_card_4421486", "amount": sum(prices) - 483 - 1991}
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
    _run(db, "send_certificate", user_id=USER, amount=10), _run(db, "send_certificate", user_id=USER, amount=20)
    assert _run(db, "send_certificate", user_id=USER, amount=30) == "Error: too many certificates sent to this user"
    assert _run(db, "calculate", expression="483 + 1991") == "2474.0"
    assert _run(db, "calculate", expression="import os").startswith("Error")
    before = state_hash(db)
    assert _run(db, "think", thought="two certificates") == "" and state_hash(db) == before
    assert _run(db, "think").startswith("Error: think: missing")
    assert _run(db, "transfer_to_human_agents", summary="wants compensation") == "Transfer successful"
    assert _run(db, "transfer_to_human_agents").startswith("Error: transfer_to_human_agents: missing")


def test_the_ground_truth_of_every_test_task_runs():
    for task in load_tasks("airline", "test"):
        db = fresh_database("airline")
        results = [call(TOOLS, db, a.name, a.kwargs) for a in task.actions]
        assert not any(r.startswith("Error: unknown tool") for r in results), task.id


@pytest.fixture
def upstream_tools():
    """Upstream's airline tool classes by name, imported from the installed tau-bench-eval files without running its
    package __init__s (they import litellm for the user simulator)."""
    root = package_file("tau-bench-eval/tau_bench")
    before = set(sys.modules)
    for name, path in (("tau_bench", root), ("tau_bench.envs", root / "envs"), ("tau_bench.envs.airline", root / "envs/airline")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules.setdefault(name, package)
    try:
        tools = importlib.import_module("tau_bench.envs.airline.tools")
        yield {cls.get_info()["function"]["name"]: cls for cls in tools.ALL_TOOLS}
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]


def _upstream_call(classes, db, name, arguments):
    """What upstream's env.step observes: the tool's text, or the exception as "Error: ..."."""
    try:
        return classes[name].invoke(data=db, **copy.deepcopy(arguments))
    except Exception as e:
        return f"Error: {e}"


PROBES = [  # the tools and refusals the ground truth never reaches, in one sequence on one database
    ("list_all_airports", {}), ("think", {"thought": "x"}),
    ("search_onestop_flight", {"origin": "JFK", "destination": "SEA", "date": "2024-05-20"}),
    ("search_onestop_flight", {"origin": "ATL", "destination": "BOS", "date": "2024-05-20"}),  # HAT039 lands next day
    ("search_onestop_flight", {"origin": "ATL", "destination": "BOS", "date": "2024-05-30"}),  # ... on 2024-05-31: none
    ("search_onestop_flight", {"origin": "SFO", "destination": "JFK", "date": "today"}),
    ("search_direct_flight", {"origin": "JFK", "destination": "SEA", "date": ["2024-05-20"]}),
    ("get_reservation_details", {"reservation_id": "ZZZZZZ"}), ("get_user_details", {"user_id": "nobody_1"}),
    ("cancel_reservation", {"reservation_id": "ZZZZZZ"}), ("send_certificate", {"user_id": "nobody_1", "amount": 5}),
    ("calculate", {"expression": "1 / 0"}),
    ("update_reservation_baggages", {"reservation_id": "1AKIA8", "total_baggages": 3, "nonfree_baggages": 2,
                                     "payment_id": "gift_card_5309492"}),
    ("update_reservation_baggages", {"reservation_id": "1AKIA8", "total_baggages": 2, "nonfree_baggages": 1,
                                     "payment_id": "gift_card_5309492"}),
    ("update_reservation_baggages", {"reservation_id": "1AKIA8", "total_baggages": 2, "nonfree_baggages": 2,
                                     "payment_id": "certificate_7502997"}),
    ("update_reservation_flights", {"reservation_id": "NO6JO3", "cabin": "first", "flights": [
        {"flight_number": "HAT083", "date": "2024-05-16"}], "payment_id": "credit_card_4421486"}),
    ("update_reservation_flights", {"reservation_id": "NO6JO3", "cabin": "economy", "flights": [
        {"flight_number": "HAT083", "date": "2024-05-16"}, {"flight_number": "HAT221", "date": "2024-05-16"}],
        "payment_id": "credit_card_4421486"}),
    ("update_reservation_passengers", {"reservation_id": "NO6JO3", "passengers": []}),
    ("book_reservation", {"user_id": GIFTED, "origin": "JFK", "destination": "SEA", "flight_type": "one_way",
                          "cabin": "economy", "flights": [{"flight_number": "HAT083", "date": "2024-05-20"}],
                          "passengers": [{"first_name": "Mei", "last_name": "Hernandez", "dob": "1990-01-01"}],
                          "payment_methods": [{"payment_id": "gift_card_5309492", "amount": 48},
                                              {"payment_id": "credit_card_2140654", "amount": 52}],
                          "total_baggages": 0, "nonfree_baggages": 0, "insurance": "no"}),
]


def test_the_tools_answer_and_change_the_database_exactly_as_upstreams(upstream_tools):
    """Every result text, and the database after every test task's ground truth (and after the probes): equal
    marshal bytes mean equal values, types and key order, hence equal state hashes, at a sixth of a hash's cost."""
    assert set(upstream_tools) == set(TOOLS)
    sequences = [(task.id, [(a.name, a.kwargs) for a in task.actions]) for task in load_tasks("airline", "test")]
    ours = theirs = None
    for label, actions in [*sequences, ("probes", PROBES)]:
        if ours is None:
            ours, theirs = fresh_database("airline"), fresh_database("airline")
        for name, arguments in actions:
            assert call(TOOLS, ours, name, arguments) == _upstream_call(upstream_tools, theirs, name, arguments), \
                (label, name, arguments)
        assert marshal.dumps(ours, 2) == marshal.dumps(theirs, 2), label
        if any(name in WRITES for name, _ in actions):  # else both are still fresh (or they would differ here)
            ours = theirs = None
    assert state_hash(ours) == state_hash(theirs)
