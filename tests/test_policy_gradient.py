"""The online-RL step on a real tiny model: samples with their exact tokens, group advantages, and a policy that moves
toward the rewarded action (and not when the rewards are shuffled)."""

import math
import random
import statistics

import pytest
import torch
from peft import LoraConfig, get_peft_model

from core.config import ModelConfig, SamplingConfig
from core.types import Message
from models.hf_backend import HFChatModel
from models.policy_gradient import Turn, _pack, _token_log_probs, group_advantages, policy_gradient_step

PROMPT = [Message(role="system", content="Book a table."), Message(role="user", content="Which tool do you call?")]


def completion_log_prob(model, prompt_ids, completion_ids) -> float:
    """log p(completion | prompt) under `model`: what shows a behaviour growing likelier."""
    ids, mask, targets = _pack([Turn(tuple(prompt_ids), tuple(completion_ids), 0.0)], 0, next(model.parameters()).device)
    with torch.no_grad():
        return (_token_log_probs(model, ids, mask, targets.shape[1]) * targets).sum().item()


def _policy(model_dir, lora: bool = False) -> HFChatModel:
    """The tiny model as a policy that returns its sampled tokens: every weight trained, or a LoRA on top."""
    torch.manual_seed(0)
    chat = HFChatModel(ModelConfig(spec=f"hf:{model_dir}", cpu_threads=1), str(model_dir))
    if lora:
        chat.model = get_peft_model(chat.model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear"))
    chat.keep_ids = True
    return chat


def _calls(chat: HFChatModel) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The two actions of the toy environment: the tool name's first token, a search (rewarded) or a booking."""
    return tuple(tuple(chat.tokenizer.encode(name, add_special_tokens=False)[:1]) for name in ("search", "book"))


def _warm_start(chat: HFChatModel, prompt_ids, calls) -> None:
    """Supervised steps (advantage 1 on both) until the policy writes one call or the other, about evenly."""
    optimizer = torch.optim.AdamW([p for p in chat.model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(5):
        policy_gradient_step(chat.model, optimizer, [Turn(prompt_ids, c, 1.0) for c in calls], chat.tokenizer.pad_token_id)


def _train(chat: HFChatModel, steps: int, shuffled: int | None = None) -> tuple[float, float]:
    """RL in a one-turn environment where the search call earns 1 and anything else 0: p(search call) before and
    after. `shuffled`: a seed to shuffle each group's rewards with (they then say nothing about the actions)."""
    prompt_ids = chat.generate([PROMPT], SamplingConfig(max_new_tokens=1))[0][0].prompt_ids
    rewarded, other = _calls(chat)
    _warm_start(chat, prompt_ids, (rewarded, other))
    optimizer = torch.optim.AdamW([p for p in chat.model.parameters() if p.requires_grad], lr=3e-3)
    shuffle = random.Random(shuffled)
    before = math.exp(completion_log_prob(chat.model, prompt_ids, rewarded))
    chat.weights_changed()
    for step in range(steps):
        sampling = SamplingConfig(temperature=1.0, max_new_tokens=len(rewarded), seed=step)
        samples = chat.generate([PROMPT], sampling, n=16)[0]
        rewards = [1.0 if s.completion_ids == rewarded else 0.0 for s in samples]
        if shuffled is not None:
            shuffle.shuffle(rewards)
        advantages = group_advantages(rewards)
        if advantages is None:
            continue
        turns = [Turn(s.prompt_ids, s.completion_ids, a) for s, a in zip(samples, advantages)]
        policy_gradient_step(chat.model, optimizer, turns, pad_id=chat.tokenizer.pad_token_id)
        chat.weights_changed()
    return before, math.exp(completion_log_prob(chat.model, prompt_ids, rewarded))


def test_the_rewarded_action_grows_likelier_and_not_with_shuffled_rewards(tiny):
    before, after = _train(_policy(tiny), steps=8)
    assert 0.3 < before < 0.7 and after > 0.9
    drifts = [_train(_policy(tiny), steps=8, shuffled=seed) for seed in range(3)]
    assert all(start == pytest.approx(before) for start, _ in drifts)  # the same starting policy
    assert statistics.fmean(end for _, end in drifts) < before + 0.2  # rewards shuffled: no pull toward the search


def test_samples_carry_the_exact_tokens_the_prompt_and_the_completion(tiny):
    chat = _policy(tiny, lora=True)
    sample = chat.generate([PROMPT], SamplingConfig(temperature=1.0, max_new_tokens=6, seed=1))[0][0]
    assert list(sample.prompt_ids) == list(chat._ids([m.model_dump(include={"role", "content"}) for m in PROMPT]))
    assert len(sample.completion_ids) == sample.completion_tokens and 1 <= sample.completion_tokens <= 6
    assert chat.tokenizer.decode(sample.completion_ids, skip_special_tokens=True) == sample.text


def test_only_completion_tokens_carry_loss_and_a_zero_advantage_changes_nothing(tiny):
    chat = _policy(tiny, lora=True)
    optimizer = torch.optim.SGD([p for p in chat.model.parameters() if p.requires_grad], lr=1.0)
    prompt = tuple(range(5, 25))
    snapshot = {n: p.detach().clone() for n, p in chat.model.named_parameters() if p.requires_grad}
    stats = policy_gradient_step(chat.model, optimizer, [Turn(prompt, (7, 8, 9), 0.0), Turn(prompt[:12], (4,), 0.0)], 0)
    assert stats.tokens == 4 and stats.turns == 2
    assert all(torch.equal(p, snapshot[n]) for n, p in chat.model.named_parameters() if p.requires_grad)

    # the loss is the sampled tokens' log-likelihood alone: the prompt's tokens are inputs, never targets
    expected = -completion_log_prob(chat.model, prompt, (7, 8)) / 2
    stats = policy_gradient_step(chat.model, optimizer, [Turn(prompt, (7, 8), 1.0)], 0)
    assert stats.loss == pytest.approx(expected, rel=1e-4)
    assert completion_log_prob(chat.model, prompt, (7, 8)) > -2 * expected  # and the step made them likelier


def test_a_group_whose_rewards_are_all_equal_teaches_nothing():
    assert group_advantages([0.5, 0.5, 0.5]) is None
    advantages = group_advantages([1.0, 0.0, 0.0, 1.0])
    assert advantages == [1.0, -1.0, -1.0, 1.0] and sum(advantages) == 0
    assert group_advantages([1.0, 0.0], scale=False) == [0.5, -0.5]


def test_the_kl_to_the_reference_is_measured_with_the_adapter_off(tiny):
    chat = _policy(tiny, lora=True)
    optimizer = torch.optim.AdamW([p for p in chat.model.parameters() if p.requires_grad], lr=1e-2)
    turn = Turn(tuple(range(5, 25)), (7, 8, 9), 1.0)
    first = policy_gradient_step(chat.model, optimizer, [turn], 0, beta=0.1)
    assert first.kl == pytest.approx(0.0, abs=1e-6)  # a fresh LoRA is the reference itself
    for _ in range(3):
        later = policy_gradient_step(chat.model, optimizer, [turn], 0, beta=0.1)
    assert later.kl > 1e-4
