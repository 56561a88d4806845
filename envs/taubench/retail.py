"""tau-bench retail: the 16 tools an online-shop agent has, over the users / orders / products database.

Names, arguments, result texts and database changes follow upstream tau-bench exactly, because the
reward replays the ground-truth actions and compares database hashes, and required outputs are
matched in the agent's replies. Refusals come back as "Error: ..." results.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

from envs.taubench.tools import Tool, dumps, tool

TOOLS: dict[str, Tool] = {}
WRITES = frozenset({"cancel_pending_order", "exchange_delivered_order_items", "modify_pending_order_address",
                    "modify_pending_order_items", "modify_pending_order_payment", "modify_user_address",
                    "return_delivered_order_items"})  # the tools that may change the database

STRING = {"type": "string"}
ORDER_ID = {"type": "string", "description": "The order id, such as '#W0000000' (with the '#')."}
USER_ID = {"type": "string", "description": "The user id, such as 'sara_doe_496'."}
ITEM_IDS = {"type": "array", "items": STRING, "description": "Item ids, such as '1008292230'; duplicates allowed."}
NEW_ITEM_IDS = {"type": "array", "items": STRING,
                "description": "The new item ids, one per item id in the same position, of the same product."}
PAYMENT_METHOD_ID = {"type": "string", "description": "A payment method id, such as 'gift_card_0000000' or "
                                                      "'credit_card_0000000', from the user or order details."}
ADDRESS = {"address1": STRING, "address2": STRING, "city": STRING, "state": STRING, "country": STRING, "zip": STRING}


def _order(db: dict[str, Any], order_id: str, status: str, refused: str) -> dict[str, Any] | str:
    """The order if it exists and has `status`, else the error text."""
    order = db["orders"].get(order_id)
    if order is None:
        return "Error: order not found"
    return order if order["status"] == status else f"Error: {refused}"


def _missing_item(order: dict[str, Any], item_ids: list[str]) -> str | None:
    """The first id asked for more often than the order holds it."""
    held = [item["item_id"] for item in order["items"]]
    return next((i for i in item_ids if item_ids.count(i) > held.count(i)), None)


def _swap_price(db: dict[str, Any], order: dict[str, Any], item_ids: list[str], new_item_ids: list[str]) -> float | str:
    """What the new variants cost more than the old items (negative: cheaper), or the error text."""
    if (missing := _missing_item(order, item_ids)) is not None:
        return f"Error: {missing} not found"
    if len(item_ids) != len(new_item_ids):
        return "Error: the number of items to be exchanged should match"
    diff = 0
    for item_id, new_item_id in zip(item_ids, new_item_ids):
        item = next(item for item in order["items"] if item["item_id"] == item_id)
        variants = db["products"][item["product_id"]]["variants"]
        if new_item_id not in variants or not variants[new_item_id]["available"]:
            return f"Error: new item {new_item_id} not found or available"
        diff += variants[new_item_id]["price"] - item["price"]
    return diff


def _payment_method(db: dict[str, Any], order: dict[str, Any], payment_method_id: str) -> dict[str, Any] | None:
    return db["users"][order["user_id"]]["payment_methods"].get(payment_method_id)


def _item_swap(db: dict[str, Any], order_id: str, status: str, refused: str, item_ids: list[str], new_item_ids: list[str],
               payment_method_id: str) -> tuple[dict[str, Any], float, dict[str, Any]] | str:
    """What an exchange and an item modification both check, in upstream's order: the order and its status, the
    items, the new variants, the payment method. Returns (order, price difference, payment method) or the error text."""
    order = _order(db, order_id, status, refused)
    if isinstance(order, str):
        return order
    diff = _swap_price(db, order, item_ids, new_item_ids)
    if isinstance(diff, str):
        return diff
    method = _payment_method(db, order, payment_method_id)
    return (order, diff, method) if method is not None else "Error: payment method not found"


@tool(TOOLS, "Calculate the result of a mathematical expression.",
      expression={"type": "string", "description": "Numbers, parentheses and + - * /, such as '2 * 3 + 4'."})
def calculate(db: dict[str, Any], expression: str) -> str:
    if not all(char in "0123456789+-*/(). " for char in expression):
        return "Error: invalid characters in expression"
    try:
        result = arithmetic(ast.parse(expression, "<string>", mode="eval").body)
    except ZeroDivisionError:
        return "Error: division by zero"  # upstream's words (its integers divide)
    except Exception as e:  # a malformed expression or an overflow is the agent's error to see
        return f"Error: {e}"
    return str(round(result, 2)) if math.isfinite(result) else "Error: int too large to convert to float"


OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
             ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def arithmetic(node: ast.expr) -> float:
    """Upstream evaluates the expression with `eval` in integers, then converts to float; here every step is in
    floats, so a tower like 9**9**9 overflows at once instead of computing a number of 370 million digits. The
    figures agree up to 2**53 (beyond, upstream's exact integers round differently), and a result too large
    for a float is upstream's error."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](arithmetic(node.left), arithmetic(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in OPERATORS:
        return OPERATORS[type(node.op)](arithmetic(node.operand))
    raise ValueError("only numbers, parentheses and + - * / (// **) are allowed")


@tool(TOOLS, "Cancel a pending order. The agent must explain the cancellation and get explicit confirmation (yes/no).",
      order_id=ORDER_ID,
      reason={"type": "string", "enum": ["no longer needed", "ordered by mistake"], "description": "Why the order is cancelled."})
def cancel_pending_order(db: dict[str, Any], order_id: str, reason: str) -> str:
    order = _order(db, order_id, "pending", "non-pending order cannot be cancelled")
    if isinstance(order, str):
        return order
    if reason not in ("no longer needed", "ordered by mistake"):
        return "Error: invalid reason"
    refunds = []
    for payment in order["payment_history"]:
        refunds.append({"transaction_type": "refund", "amount": payment["amount"],
                        "payment_method_id": payment["payment_method_id"]})
        if "gift_card" in payment["payment_method_id"]:  # gift cards are refunded at once
            card = _payment_method(db, order, payment["payment_method_id"])
            card["balance"] = round(card["balance"] + payment["amount"], 2)
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return dumps(order)


@tool(TOOLS, "Exchange items of a delivered order for other variants of the same products (once per order). The agent "
             "must explain the exchange and get explicit confirmation (yes/no).",
      order_id=ORDER_ID, item_ids=ITEM_IDS, new_item_ids=NEW_ITEM_IDS, payment_method_id=PAYMENT_METHOD_ID)
def exchange_delivered_order_items(db: dict[str, Any], order_id: str, item_ids: list[str], new_item_ids: list[str],
                                   payment_method_id: str) -> str:
    checked = _item_swap(db, order_id, "delivered", "non-delivered order cannot be exchanged", item_ids, new_item_ids,
                         payment_method_id)
    if isinstance(checked, str):
        return checked
    order, diff, method = checked
    diff = round(diff, 2)
    if method["source"] == "gift_card" and method["balance"] < diff:
        return "Error: insufficient gift card balance to pay for the price difference"
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = diff
    return dumps(order)


@tool(TOOLS, "Find a user id by email.", email={"type": "string", "description": "The email, such as 'something@example.com'."})
def find_user_id_by_email(db: dict[str, Any], email: str) -> str:
    return next((uid for uid, user in db["users"].items() if user["email"].lower() == email.lower()),
                "Error: user not found")


@tool(TOOLS, "Find a user id by first name, last name and zip code.",
      first_name={"type": "string", "description": "Such as 'John'."}, last_name={"type": "string", "description": "Such as 'Doe'."},
      zip={"type": "string", "description": "Such as '12345'."})
def find_user_id_by_name_zip(db: dict[str, Any], first_name: str, last_name: str, zip: str) -> str:
    for uid, user in db["users"].items():
        name = user["name"]
        if (name["first_name"].lower(), name["last_name"].lower(), user["address"]["zip"]) == \
                (first_name.lower(), last_name.lower(), zip):
            return uid
    return "Error: user not found"


@tool(TOOLS, "Get the status and details of an order.", order_id=ORDER_ID)
def get_order_details(db: dict[str, Any], order_id: str) -> str:
    return dumps(db["orders"][order_id]) if order_id in db["orders"] else "Error: order not found"


@tool(TOOLS, "Get the inventory details of a product.",
      product_id={"type": "string", "description": "The product id, such as '6086499569' (not an item id)."})
def get_product_details(db: dict[str, Any], product_id: str) -> str:
    return dumps(db["products"][product_id]) if product_id in db["products"] else "Error: product not found"


@tool(TOOLS, "Get the details of a user, including their orders.", user_id=USER_ID)
def get_user_details(db: dict[str, Any], user_id: str) -> str:
    return dumps(db["users"][user_id]) if user_id in db["users"] else "Error: user not found"


@tool(TOOLS, "List the name and product id of every product type in the store (50 of them).")
def list_all_product_types(db: dict[str, Any]) -> str:
    return dumps(dict(sorted({p["name"]: p["product_id"] for p in db["products"].values()}.items())))


@tool(TOOLS, "Modify the shipping address of a pending order. The agent must explain the change and get explicit "
             "confirmation (yes/no).", order_id=ORDER_ID, **ADDRESS)
def modify_pending_order_address(db: dict[str, Any], order_id: str, address1: str, address2: str, city: str, state: str,
                                 country: str, zip: str) -> str:
    order = _order(db, order_id, "pending", "non-pending order cannot be modified")
    if isinstance(order, str):
        return order
    order["address"] = {"address1": address1, "address2": address2, "city": city, "state": state, "country": country,
                        "zip": zip}
    return dumps(order)


@tool(TOOLS, "Modify items of a pending order to other variants of the same products (once per order). The agent must "
             "explain the change and get explicit confirmation (yes/no).",
      order_id=ORDER_ID, item_ids=ITEM_IDS, new_item_ids=NEW_ITEM_IDS, payment_method_id=PAYMENT_METHOD_ID)
def modify_pending_order_items(db: dict[str, Any], order_id: str, item_ids: list[str], new_item_ids: list[str],
                               payment_method_id: str) -> str:
    checked = _item_swap(db, order_id, "pending", "non-pending order cannot be modified", item_ids, new_item_ids,
                         payment_method_id)
    if isinstance(checked, str):
        return checked
    order, diff, method = checked  # the difference is not rounded here, unlike an exchange's (as upstream)
    if method["source"] == "gift_card" and method["balance"] < diff:
        return "Error: insufficient gift card balance to pay for the new item"
    order["payment_history"].append({"transaction_type": "payment" if diff > 0 else "refund", "amount": abs(diff),
                                     "payment_method_id": payment_method_id})
    if method["source"] == "gift_card":
        method["balance"] = round(method["balance"] - diff, 2)
    for item_id, new_item_id in zip(item_ids, new_item_ids):
        item = next(item for item in order["items"] if item["item_id"] == item_id)
        variant = db["products"][item["product_id"]]["variants"][new_item_id]
        item.update(item_id=new_item_id, price=variant["price"], options=variant["options"])
    order["status"] = "pending (item modified)"
    return dumps(order)


@tool(TOOLS, "Modify the payment method of a pending order. The agent must explain the change and get explicit "
             "confirmation (yes/no).", order_id=ORDER_ID, payment_method_id=PAYMENT_METHOD_ID)
def modify_pending_order_payment(db: dict[str, Any], order_id: str, payment_method_id: str) -> str:
    order = _order(db, order_id, "pending", "non-pending order cannot be modified")
    if isinstance(order, str):
        return order
    method = _payment_method(db, order, payment_method_id)
    if method is None:
        return "Error: payment method not found"
    history = order["payment_history"]
    if len(history) > 1 or history[0]["transaction_type"] != "payment":
        return "Error: there should be exactly one payment for a pending order"
    old_id, amount = history[0]["payment_method_id"], history[0]["amount"]
    if old_id == payment_method_id:
        return "Error: the new payment method should be different from the current one"
    if method["source"] == "gift_card" and method["balance"] < amount:
        return "Error: insufficient gift card balance to pay for the order"
    history.extend([{"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id},
                    {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id}])
    if method["source"] == "gift_card":
        method["balance"] = round(method["balance"] - amount, 2)
    if "gift_card" in old_id:
        old = _payment_method(db, order, old_id)
        old["balance"] = round(old["balance"] + amount, 2)
    return dumps(order)


@tool(TOOLS, "Modify a user's default address. The agent must explain the change and get explicit confirmation (yes/no).",
      user_id=USER_ID, **ADDRESS)
def modify_user_address(db: dict[str, Any], user_id: str, address1: str, address2: str, city: str, state: str,
                        country: str, zip: str) -> str:
    user = db["users"].get(user_id)
    if user is None:
        return "Error: user not found"
    user["address"] = {"address1": address1, "address2": address2, "city": city, "state": state, "country": country,
                       "zip": zip}
    return dumps(user)


@tool(TOOLS, "Return items of a delivered order (once per order), refunded to the original payment method or a gift card. "
             "The agent must explain the return and get explicit confirmation (yes/no).",
      order_id=ORDER_ID, item_ids=ITEM_IDS, payment_method_id=PAYMENT_METHOD_ID)
def return_delivered_order_items(db: dict[str, Any], order_id: str, item_ids: list[str], payment_method_id: str) -> str:
    order = _order(db, order_id, "delivered", "non-delivered order cannot be returned")
    if isinstance(order, str):
        return order
    if _payment_method(db, order, payment_method_id) is None:
        return "Error: payment method not found"
    if "gift_card" not in payment_method_id and payment_method_id != order["payment_history"][0]["payment_method_id"]:
        return "Error: payment method should be either the original payment method or a gift card"
    if _missing_item(order, item_ids) is not None:
        return "Error: some item not found"
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return dumps(order)


@tool(TOOLS, "Think about something; it changes nothing and fetches nothing.",
      thought={"type": "string", "description": "A thought to think about."})
def think(db: dict[str, Any], thought: str) -> str:
    return ""


@tool(TOOLS, "Transfer the user to a human agent, with a summary of their issue; only when the request is beyond the "
             "agent's tools and policy, or the user explicitly asks for a human.",
      summary={"type": "string", "description": "A summary of the user's issue."})
def transfer_to_human_agents(db: dict[str, Any], summary: str) -> str:
    return "Transfer successful"
