"""The imagination engine flow end to end through the real `openai` client, against a local chat server."""

from __future__ import annotations

import re

import datasets
import pytest
from chat_server import ChatServer

from core.config import ImagineConfig, ModelConfig, PersonaConfig


def canned(body: dict) -> str:
    """Varied canned answers per step: people lines, dialogues that differ by outcome and persona, critiques."""
    text = body["messages"][-1]["content"]
    if "For each person" in text:
        n = int(re.search(r"Here are (\d+) people", text).group(1))
        return "\n".join(f"{i}. Customer {i}, whose order {100 + i} arrived broken." for i in range(1, n + 1))
    if "Check it against" in text:
        return "The agent never asks for the order number." if "order number" not in text else "Fine, but be warmer."
    order = re.search(r"(?:order|parcel) (\d+)", text).group(1)
    if "fully succeeds" in text:
        return (f"User: My parcel {order} came broken.\nAgent: Sorry! What is your order number?\n"
                f"User: {order}.\nAgent: A replacement for order {order} ships today.")
    return f"User: My parcel {order} came broken.\nAgent: We cannot help with that.\nUser: Really?\nAgent: Really."


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("SELFTRAIN_TEST_API_KEY", "sk-test-imagine")
    chat = ChatServer(reply=canned)
    yield chat
    chat.stop()


def test_imagine_flow_makes_sft_and_dpo_rows_through_an_openai_endpoint(prefect_server, server, tmp_path):
    from flows.imagine import imagine_flow

    model = ModelConfig(spec="openai:tiny", base_url=server.url, api_key_env="SELFTRAIN_TEST_API_KEY")
    cfg = ImagineConfig(model=model, personas=PersonaConfig(n=3), runs_dir=str(tmp_path))
    report = imagine_flow(cfg)

    steps = [r["messages"][-1]["content"].split("\n")[0] for r in server.requests]
    assert steps.count("Imagine a complete conversation between a user and an AI agent.") == 6  # 3 personas x 2 outcomes
    revisions = [r["messages"][-1]["content"] for r in server.requests if "A reviewer said" in r["messages"][-1]["content"]]
    assert len(revisions) == 6 and sum("A reviewer said: The agent never asks" in r for r in revisions) == 3
    assert report.counts == {"dialogues": 6, "empty": 0, "sft": 3, "dpo": 3, "kto": 6}
    dpo = datasets.load_from_disk(f"{report.run_dir}/dpo")
    assert {row["chosen"][0]["content"] for row in dpo} == {"Sorry! What is your order number?"}
    assert {row["rejected"][0]["content"] for row in dpo} == {"We cannot help with that."}
    assert len({row["prompt"][-1]["content"] for row in dpo}) == 3  # one opening per persona, shared by its pair
    sft = datasets.load_from_disk(f"{report.run_dir}/sft")
    assert all(row["messages"][0]["role"] == "system" and cfg.task in row["messages"][0]["content"] for row in sft)
    imagined = datasets.load_from_disk(f"{report.run_dir}/imagined")
    assert all(row["critique"] and row["draft"] for row in imagined)

    sent = len(server.requests)
    again = imagine_flow(cfg)
    assert again.cached and len(server.requests) == sent and again.counts == report.counts
