"""Local Hugging Face causal LMs: chat template, left-padded batched sampling, 4-bit and LoRA."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from core.config import ModelConfig, SamplingConfig
from core.errors import ModelSpecError
from core.types import Message
from models import hf_source, model_fingerprint
from models.base import ChatModel, Generation


class HFChatModel(ChatModel):
    """A hub id or local model dir, optionally 4-bit NF4 and/or with a LoRA adapter on top."""

    def __init__(self, cfg: ModelConfig, name_or_path: str):
        self.cfg = cfg
        self.spec = cfg.spec
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if cfg.cpu_threads and self.device == "cpu":
            torch.set_num_threads(cfg.cpu_threads)
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        source = hf_source(name_or_path)
        quant = None
        if cfg.load_in_4bit:
            quant = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dtype,
            )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, quantization_config=quant, device_map=self.device
            )
        except (OSError, ValueError) as e:
            raise ModelSpecError(f"cannot load model {source!r}: {e}") from None
        if cfg.adapter:
            from peft import PeftModel

            adapter = Path(cfg.adapter).expanduser()
            if not adapter.is_dir():
                raise ModelSpecError(f"LoRA adapter directory {cfg.adapter!r} does not exist")
            try:
                model = PeftModel.from_pretrained(model, str(adapter))
            except (OSError, ValueError) as e:
                raise ModelSpecError(f"cannot load LoRA adapter {cfg.adapter!r}: {e}") from None
        self.model = model.eval()
        # Batches are left-padded so every prompt ends where generation starts.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else {eos}

    def generate(
        self, prompts: Sequence[Sequence[Message]], sampling: SamplingConfig, n: int = 1
    ) -> list[list[Generation]]:
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        # batch_size counts sequences: n samples of a prompt are generated side by side
        per_batch = max(1, self.cfg.batch_size // n) if sampling.temperature > 0 else self.cfg.batch_size
        out: list[list[Generation]] = []
        for start in range(0, len(prompts), per_batch):
            out += self._generate_batch(prompts[start : start + per_batch], sampling, n)
        return out

    @torch.inference_mode()
    def _generate_batch(
        self, prompts: Sequence[Sequence[Message]], sampling: SamplingConfig, n: int
    ) -> list[list[Generation]]:
        room = self._context_length() - sampling.max_new_tokens
        chats = [self._fit([{"role": m.role, "content": m.content} for m in p], room) for p in prompts]
        enc = self.tokenizer.apply_chat_template(
            chats, add_generation_prompt=True, padding=True, return_tensors="pt"
        ).to(self.device)
        sample = sampling.temperature > 0
        copies = n if sample else 1  # greedy gives the same text every time: decode once, copy n times
        # top_k=0 disables transformers' default top-k 50: only temperature and top_p shape sampling, as in the APIs.
        knobs = {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0} if sample else {}
        seqs = self.model.generate(
            **enc,
            do_sample=sample,
            num_return_sequences=copies,
            max_new_tokens=sampling.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            **knobs,
        )
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        completions = seqs[:, enc["input_ids"].shape[1] :].tolist()
        out = []
        for i, n_prompt in enumerate(prompt_tokens):
            gens = [self._generation(ids, n_prompt) for ids in completions[i * copies : (i + 1) * copies]]
            out.append(gens * (n // copies))
        return out

    def _context_length(self) -> int:
        return getattr(self.model.config, "max_position_embeddings", None) or self.tokenizer.model_max_length

    def _fit(self, chat: list[dict[str, str]], room: int) -> list[dict[str, str]]:
        """Drop the oldest turns after the system prompt until the prompt fits the context window."""
        while len(chat) > 2 and len(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False)) > room:
            chat = chat[:1] + chat[2:] if chat[0]["role"] == "system" else chat[1:]
        return chat

    def _generation(self, ids: list[int], prompt_tokens: int) -> Generation:
        """Cut at the first eos (kept in the count, as the model did produce it); the rest is padding."""
        length = next((k + 1 for k, t in enumerate(ids) if t in self.eos_ids), len(ids))
        text = self.tokenizer.decode(ids[:length], skip_special_tokens=True)
        return Generation(text=text, prompt_tokens=prompt_tokens, completion_tokens=length)

    def fingerprint(self) -> str:
        return model_fingerprint(self.cfg)

    def close(self) -> None:
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
