"""Text <-> token ids for GGUF models: the byte-level BPE tokenizer a GGUF file describes
in its metadata (tokenizer.ggml.*), built with the `tokenizers` library, plus the chat
template (tokenizer.chat_template, Jinja) when the file has one.

    tok = Tokenizer.from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
    ids = tok.encode("The capital of France is"); tok.decode(ids)
    tok.chat("What is 2+2?")   # the prompt text the model was tuned on, ready to encode

Only `tokenizer.ggml.model = gpt2` (byte-level BPE with merges) is supported; the
pre-tokenizer follows `tokenizer.ggml.pre` as llama.cpp does ("smollm": digits split one
by one, then GPT-2's regex). Control and user-defined tokens are added whole (so
"<|im_end|>" in text is one id), as llama.cpp and transformers do.
"""
from __future__ import annotations

from pathlib import Path

from speccc.errors import SpecccError

CONTROL, USER_DEFINED = 3, 4  # tokenizer.ggml.token_type values
_DIGITS_FIRST = {"smollm"}    # pre-tokenizers that isolate each digit before GPT-2's regex


def tokenizer_fields(path) -> dict:
    """The GGUF file's tokenizer.* metadata. gguf's reader parses every field with one
    memmap view per string (~4 s for SmolLM2's 49k tokens and merges), so the fields are
    kept as JSON in the cache (tokenizer/), keyed by the file's path, size and mtime: a
    changed or replaced file is a new key."""
    import hashlib
    import json

    from speccc import cachedir
    from speccc.zoo.gguf import read_fields
    p = Path(path).resolve()
    try:
        st = p.stat()
        ident = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        return read_fields(path, "tokenizer.")        # reports the missing file
    entry = cachedir.cache_dir("tokenizer",
                               hashlib.sha256(ident.encode()).hexdigest()[:32] + ".json")
    data = cachedir.read_entry(entry)
    if data is not None:
        try:
            cached = json.loads(data)
            if cached.get("file") == ident:
                return cached["fields"]
        except (ValueError, AttributeError, KeyError):
            pass                                       # a torn or foreign entry: a miss
    fields = read_fields(path, "tokenizer.")
    cachedir.write_entry(entry, json.dumps({"file": ident, "fields": fields},
                                           default=_json_scalar).encode())
    return fields


def _json_scalar(x):
    """numpy scalars among GGUF values, as Python numbers."""
    return x.item()


class Tokenizer:
    def __init__(self, backend, *, bos_id: int | None, eos_id: int | None, add_bos: bool,
                 chat_template: str | None, source: str = ""):
        self.backend, self.source = backend, source
        self.bos_id, self.eos_id, self.add_bos = bos_id, eos_id, add_bos
        self.chat_template = chat_template

    @classmethod
    def from_gguf(cls, path) -> "Tokenizer":
        return cls.from_fields(tokenizer_fields(path), str(path))

    @classmethod
    def from_fields(cls, fields: dict, source: str = "") -> "Tokenizer":
        from tokenizers import AddedToken, Tokenizer as HFTokenizer, decoders, models
        from tokenizers import pre_tokenizers as pre
        kind = fields.get("tokenizer.ggml.model")
        if kind != "gpt2":
            raise SpecccError(f"unsupported tokenizer model {kind!r} (speccc builds "
                              "byte-level BPE tokenizers, tokenizer.ggml.model = gpt2)",
                              location=source)
        tokens = list(fields["tokenizer.ggml.tokens"])
        merges = [tuple(m.split(" ", 1)) for m in fields.get("tokenizer.ggml.merges", [])]
        backend = HFTokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges,
                                         ignore_merges=False))
        byte_level = pre.ByteLevel(add_prefix_space=False, use_regex=True)
        backend.pre_tokenizer = (pre.Sequence([pre.Digits(individual_digits=True), byte_level])
                                 if fields.get("tokenizer.ggml.pre") in _DIGITS_FIRST
                                 else byte_level)
        backend.decoder = decoders.ByteLevel()
        types = list(fields.get("tokenizer.ggml.token_type", []))
        backend.add_special_tokens([AddedToken(t, normalized=False, special=True)
                                    for t, k in zip(tokens, types) if k == CONTROL])
        backend.add_tokens([AddedToken(t, normalized=False)
                            for t, k in zip(tokens, types) if k == USER_DEFINED])
        return cls(backend, bos_id=fields.get("tokenizer.ggml.bos_token_id"),
                   eos_id=fields.get("tokenizer.ggml.eos_token_id"),
                   add_bos=bool(fields.get("tokenizer.ggml.add_bos_token", False)),
                   chat_template=fields.get("tokenizer.chat_template"), source=source)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if self.add_bos and self.bos_id is not None else []) + ids

    def decode(self, ids, skip_special: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special)

    def chat(self, user: str) -> str:
        """`user` as one user turn in the model's chat template, ready for the reply."""
        if not self.chat_template:
            raise SpecccError("--chat: this model's GGUF has no tokenizer.chat_template",
                              location=self.source)
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        tokens = self.backend
        return env.from_string(self.chat_template).render(
            messages=[{"role": "user", "content": user}], add_generation_prompt=True,
            bos_token=tokens.id_to_token(self.bos_id) if self.bos_id is not None else "",
            eos_token=tokens.id_to_token(self.eos_id) if self.eos_id is not None else "")


def for_model(path) -> Tokenizer:
    """The tokenizer of an ONNX made by import-gguf / zoo (its GGUF is named in the
    `speccc.gguf` metadata), or of a .gguf file given directly."""
    import json

    import onnx
    p = Path(path)
    if p.suffix == ".gguf":
        return Tokenizer.from_gguf(p)
    model = onnx.load(str(p), load_external_data=False)
    meta = {m.key: m.value for m in model.metadata_props}
    src = json.loads(meta.get("speccc.gguf", "{}")).get("path")
    if not src or not Path(src).is_file():
        raise SpecccError("no tokenizer: the model was not made from a GGUF file by speccc; "
                          "pass --tokenizer FILE.gguf", location=str(p))
    return Tokenizer.from_gguf(src)
