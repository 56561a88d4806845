"""Retail tools on real records of the shipped database: each one's success and a refused case, and the
ground-truth actions of every test task replayed through them score 1.0."""

import json

import pytest

from envs.taubench.data import fresh_database, load_tasks, state_hash
from envs.taubench.retail import TOOLS, WRITES
from envs.taubench.tools import call



@pytest.fixture
def db():
    return fresh_database("retail")


def _order(db, status, one_payment=False):
    return next(o for o in db["orders"].values() if o["status"] == status
                and (not one_payment or [p["transaction_type"] for p in o["payment_history"]] == ["payment"]))


def _other_variant(db, item):
    variants = db["products"][item["product_id"]]["variants"]
    return next(v for v, info in variants.items() if v != item["item_id"] and info["available"])


def _run(db, name, **kwargs):
    return call(TOOLS, db, name, kwargs)


def test_there_are_the_sixteen_retail_tools_with_schemas():
    assert len(TOOLS) == 16
    schema = TOOLS["exchange_delivered_order_items"].schema()["function"]
    assert schema["parameters"]["required"] == ["order_id", "item_ids", "new_item_ids", "payment_method_id"]
    assert TOOLS["list_all_product_types"].schema()["function"]["parameters"]["required"] == []


def test_lookups_find_real_records_and_refuse_unknown_ones(db):
    uid, user = next(iter(db["users"].items()))
    assert _run(db, "find_user_id_by_email", email=user["email"].upper()) == uid
    assert _run(db, "find_user_id_by_email", email="nobody@example.com") == "Error: user not found"
    name = user["name"]
    assert _run(db, "find_user_id_by_name_zip", first_name=name["first_name"], last_name=name["last_name"],
                zip=user["address"]["zip"]) == uid
    assert _run(db, "find_user_id_by_name_zip", first_name=name["first_name"], last_name=name["last_name"],
                zip="00000") == "Error: user not found"
    assert json.loads(_run(db, "get_user_details", user_id=uid))["email"] == user["email"]
    assert _run(db, "get_user_details", user_id="nobody_1") == "Error: user not found"
    order_id = user["orders"][0]
    assert json.loads(_run(db, "get_order_details", order_id=order_id))["order_id"] == order_id
    assert _run(db, "get_order_details", order_id="W0000000") == "Error: order not found"  # the '#' is part of the id
    product_id = next(iter(db["products"]))
    assert json.loads(_run(db, "get_product_details", product_id=product_id))["product_id"] == product_id
    assert _run(db, "get_product_details", product_id="1") == "Error: product not found"
    types = json.loads(_run(db, "list_all_product_types"))
    assert len(types) == 50 and list(types) == sorted(types)
    assert _run(db, "list_all_product_types", extra=1).startswith("Error: list_all_product_types")


def test_calculate_think_and_transfer(db):
    assert _run(db, "calculate", expression="(10 + 5) * 2 / 3") == "10.0"
    assert _run(db, "calculate", expression="__import__('os')") == "Error: invalid characters in expression"
    assert _run(db, "calculate", expression="1 / 0").startswith("Error:")
    before = state_hash(db)
    assert _run(db, "think", thought="the order is pending") == "" and state_hash(db) == before
    assert _run(db, "transfer_to_human_agents", summary="wants a refund to a closed card") == "Transfer successful"
    assert _run(db, "think").startswith("Error: think: missing a required argument: 'thought'")
    assert _run(db, "transfer_to_human_agents", reason="x").startswith("Error: transfer_to_human_agents:")


def test_cancel_a_pending_order_refunds_every_payment(db):
    order = _order(db, "pending")
    assert _run(db, "cancel_pending_order", order_id=order["order_id"], reason="because") == "Error: invalid reason"
    result = json.loads(_run(db, "cancel_pending_order", order_id=order["order_id"], reason="no longer needed"))
    assert result["status"] == "cancelled" and result["payment_history"][-1]["transaction_type"] == "refund"
    assert _run(db, "cancel_pending_order", order_id=order["order_id"], reason="no longer needed") == \
        "Error: non-pending order cannot be cancelled"


def test_exchange_and_return_work_on_delivered_orders_only(db):
    order = _order(db, "delivered")
    item = order["items"][0]
    method = order["payment_history"][0]["payment_method_id"]
    new = _other_variant(db, item)
    assert _run(db, "exchange_delivered_order_items", order_id=order["order_id"], item_ids=[item["item_id"]],
                new_item_ids=[new, new], payment_method_id=method) == "Error: the number of items to be exchanged should match"
    result = json.loads(_run(db, "exchange_delivered_order_items", order_id=order["order_id"], item_ids=[item["item_id"]],
                             new_item_ids=[new], payment_method_id=method))
    assert result["status"] == "exchange requested" and result["exchange_new_items"] == [new]
    assert _run(db, "return_delivered_order_items", order_id=order["order_id"], item_ids=[item["item_id"]],
                payment_method_id=method) == "Error: non-delivered order cannot be returned"
    other = next(o for o in db["orders"].values() if o["status"] == "delivered")
    assert _run(db, "return_delivered_order_items", order_id=other["order_id"], item_ids=["0"],
                payment_method_id=other["payment_history"][0]["payment_method_id"]) == "Error: some item not found"
    returned = json.loads(_run(db, "return_delivered_order_items", order_id=other["order_id"],
                               item_ids=[other["items"][0]["item_id"]],
                               payment_method_id=other["payment_history"][0]["payment_method_id"]))
    assert returned["status"] == "return requested"


def test_pending_orders_take_new_items_payment_and_address(db):
    order = _order(db, "pending", one_payment=True)
    item, method = order["items"][0], order["payment_history"][0]["payment_method_id"]
    assert _run(db, "modify_pending_order_payment", order_id=order["order_id"], payment_method_id=method) == \
        "Error: the new payment method should be different from the current one"
    others = [m for m in db["users"][order["user_id"]]["payment_methods"].values()
              if m["id"] != method and (m["source"] != "gift_card" or m["balance"] >= order["payment_history"][0]["amount"])]
    if others:
        paid = json.loads(_run(db, "modify_pending_order_payment", order_id=order["order_id"],
                               payment_method_id=others[0]["id"]))
        assert [p["transaction_type"] for p in paid["payment_history"]] == ["payment", "payment", "refund"]
    new = _other_variant(db, item)
    assert _run(db, "modify_pending_order_items", order_id=order["order_id"], item_ids=[item["item_id"]],
                new_item_ids=[new], payment_method_id="credit_card_0") == "Error: payment method not found"
    modified = json.loads(_run(db, "modify_pending_order_items", order_id=order["order_id"], item_ids=[item["item_id"]],
                               new_item_ids=[new], payment_method_id=method))
    assert modified["status"] == "pending (item modified)" and new in [i["item_id"] for i in modified["items"]]
    address = dict(address1="1 Main St", address2="", city="Austin", state="TX", country="USA", zip="78701")
    assert _run(db, "modify_pending_order_address", order_id=order["order_id"], **address) == \
        "Error: non-pending order cannot be modified"  # "pending (item modified)" takes no more changes
    other = _order(db, "pending")
    assert json.loads(_run(db, "modify_pending_order_address", order_id=other["order_id"], **address))["address"]["zip"] == "78701"
    delivered = _order(db, "delivered")
    assert _run(db, "modify_pending_order_address", order_id=delivered["order_id"], **address) == \
        "Error: non-pending order cannot be modified"
    assert json.loads(_run(db, "modify_user_address", user_id=order["user_id"], **address))["address"]["city"] == "Austin"
    assert _run(db, "modify_user_address", user_id="nobody_1", **address) == "Error: user not found"
    assert _run(db, "modify_user_address", user_id=order["user_id"]).startswith("Error: modify_user_address: missing")


def test_the_ground_truth_of_every_test_task_runs_and_its_writes_change_the_database():
    for task in load_tasks("retail", "test"):
        db = fresh_database("retail")
        before = state_hash(db)
        results = [call(TOOLS, db, a.name, a.kwargs) for a in task.actions]
        assert not any(r.startswith("Error: unknown tool") for r in results), task.id
        if any(a.name in WRITES and not r.startswith("Error") for a, r in zip(task.actions, results)):
            assert state_hash(db) != before, task.id
    assert call(TOOLS, fresh_database("retail"), "refund_everything", {}).startswith("Error: unknown tool")
