"""Online RL end to end on the random tiny model: groups of ToolWOZ dialogues against the agenda user, samples that
hold the agent's tokens only, checkpoints that resume exactly, and the Prefect flow (adapter, records, cache)."""

import json

import pytest
import torch

from core.config import ModelConfig, SamplingConfig
from core.types import Message
from envs.registry import domain
from flows.rl import rl
from models.hf_backend import HFChatModel
from models.policy_gradient import Turn, policy_gradient_step
from models.rl_policy import last_checkpoint, optimizer_for, save_checkpoint, trainable_policy
from roleplay.config import RLConfig
from roleplay.grpo import play_groups, training_turns
from roleplay.rollout import agent_format
from roleplay.users import AgendaUser
from tasks.rl import rl_dir


def _cfg(model_dir, **kw) -> RLConfig:
    return RLConfig(agent=ModelConfig(spec=f"hf:{model_dir}", cpu_threads=1), user={"spec": "agenda"}, n_tasks=2,
                    steps=2, tasks_per_step=2, group_size=2, max_messages=4,
                    agent_sampling=SamplingConfig(temperature=1.0, max_new_tokens=12, seed=0), **kw)


def test_a_group_is_g_dialogues_of_one_task_and_only_the_agents_tokens_are_trained(tiny):
    cfg = _cfg(tiny)
    policy = trainable_policy(cfg.agent, None, cfg.lora_r, cfg.lora_alpha)
    toolwoz = domain("toolwoz")
    tasks = toolwoz.task_ids("train")[:2]
    groups = play_groups(policy, AgendaUser(cfg.max_messages), toolwoz, agent_format(toolwoz, cfg), tasks, cfg, step=0)
    assert [[e.scenario.task_id for e in g] for g in groups] == [[t, t] for t in tasks]
    for e in (e for g in groups for e in g):
        customer = [m.content for m in e.record if m.role == "user"]
        assert e.samples and customer
        for sample in e.samples:
            completion = policy.tokenizer.decode(sample.completion_ids, skip_special_tokens=True).lower()
            assert completion == sample.text.lower() and not any(said.lower() in completion for said in customer)
        prompt = policy.tokenizer.decode(e.samples[0].prompt_ids).lower()  # (the embedded tokenizer lowercases words)
        assert customer[0].lower() in prompt  # what the customer said reaches the agent as context only

    rewards = [[1.0, 0.0], [0.0, 0.0]]  # different within the first group only: the second teaches nothing
    turns, spreads, skipped = training_turns(groups, rewards, cfg)
    assert skipped == 1 and spreads == [0.5, 0.0]
    assert len(turns) == sum(len(e.samples) for e in groups[0])
    assert {t.advantage for t in turns} == {1.0, -1.0}


def test_a_resumed_run_trains_what_the_uninterrupted_one_does(tiny, tmp_path):
    cfg = _cfg(tiny)
    turns = [Turn(tuple(range(5, 30)), (7, 8, 9), 1.0), Turn(tuple(range(5, 20)), (11, 4), -1.0)]

    def steps(policy, optimizer, n):
        for _ in range(n):
            policy_gradient_step(policy.model, optimizer, turns, 0)

    torch.manual_seed(0)  # a new LoRA starts from random weights: seeded alike in both runs
    straight = trainable_policy(cfg.agent, None, cfg.lora_r, cfg.lora_alpha)
    steps(straight, optimizer_for(straight, 1e-2), 4)

    torch.manual_seed(0)
    first = trainable_policy(cfg.agent, None, cfg.lora_r, cfg.lora_alpha)
    optimizer = optimizer_for(first, 1e-2)
    steps(first, optimizer, 2)
    save_checkpoint(tmp_path, first, optimizer, [])
    checkpoint, records = last_checkpoint(tmp_path)
    resumed = trainable_policy(cfg.agent, None, cfg.lora_r, cfg.lora_alpha, checkpoint)
    steps(resumed, optimizer_for(resumed, 1e-2, checkpoint), 2)

    trained = {n: p for n, p in straight.model.named_parameters() if p.requires_grad}
    again = {n: p for n, p in resumed.model.named_parameters() if p.requires_grad}
    assert trained.keys() == again.keys() and records == []
    assert all(torch.allclose(trained[n], again[n], atol=1e-6) for n in trained)


def test_the_rl_flow_trains_an_adapter_the_evaluation_can_load_and_caches_it(prefect_server, tiny):
    cfg = _cfg(tiny, invalid_call_penalty=0.1)
    adapter = rl(cfg)
    assert adapter.steps == 2 and adapter.rows == 8 and not adapter.cached
    report = json.loads((rl_dir(adapter.fingerprint) / "rl.json").read_text())
    assert [r["step"] for r in report["records"]] == [0, 1]
    assert all(r["mean_reward"] <= 0.0 for r in report["records"])  # untrained: nothing earned, invalid calls cost
    assert (rl_dir(adapter.fingerprint) / "rl.png").stat().st_size > 0
    loaded = HFChatModel(cfg.agent.model_copy(update={"adapter": adapter.path}), str(tiny))
    assert loaded.generate([[Message(role="user", content="hi")]], SamplingConfig(max_new_tokens=4))[0][0].completion_tokens

    again = rl(cfg)
    assert again.cached and again.path == adapter.path
