"""tau-bench data from the josh-train wheel: tasks parsed (not imported) with every split's count, databases
copied per episode, states compared by hash."""

import pytest

from core.errors import DataMissingError
from envs.taubench.data import SPLITS, fresh_database, load_tasks, policy, state_hash
from envs.toolwoz.data import package_file


@pytest.mark.parametrize("domain, split, count", [("retail", "test", 115), ("retail", "train", 500), ("retail", "dev", 20),
                                                  ("airline", "test", 50)])
def test_every_split_has_its_tasks_with_calls_to_the_domains_own_tools(domain, split, count):
    tasks = load_tasks(domain, split)
    tools = {p.stem for p in package_file(f"tau-bench-eval/tau_bench/envs/{domain}/tools").glob("*.py")} - {"__init__"}
    assert len(tasks) == count and [t.index for t in tasks] == list(range(count))
    assert len(tools) == {"retail": 16, "airline": 14}[domain]
    assert {a.name for t in tasks for a in t.actions} <= tools
    assert all(t.user_id and t.instruction for t in tasks)


def test_a_task_reads_as_written_in_the_file():
    first = load_tasks("retail", "test")[0]
    assert first.user_id == "yusuf_rossi_9620" and first.id == "retail-test-0"
    assert [a.name for a in first.actions] == ["find_user_id_by_name_zip", "get_order_details", "get_product_details",
                                               "get_product_details", "exchange_delivered_order_items"]
    assert first.actions[-1].kwargs["item_ids"] == ["1151293680", "4983901480"]
    assert sum(len(t.outputs) for t in load_tasks("airline", "test")) > 0  # some tasks require things said to the customer


def test_each_episode_gets_its_own_database_and_states_compare_by_content():
    a, b = fresh_database("airline"), fresh_database("airline")
    assert state_hash(a) == state_hash(b) and {k: len(v) for k, v in a.items()} == {"flights": 300, "reservations": 2000,
                                                                                       "users": 500}
    reservation = next(iter(a["reservations"].values()))
    reservation["status"] = "cancelled"
    assert state_hash(a) != state_hash(b) and state_hash(fresh_database("airline")) == state_hash(b)
    assert state_hash({"x": 1, "y": 2}) == state_hash({"y": 2, "x": 1})
    assert "airline" in policy("airline").lower()


def test_an_unknown_split_is_named():
    with pytest.raises(DataMissingError, match="airline has no 'train' split"):
        load_tasks("airline", "train")
    assert SPLITS["retail"] == ("test", "train", "dev")
