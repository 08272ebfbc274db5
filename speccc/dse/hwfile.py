"""Hardware variants: a preset (or .toml) with knob values applied, as TOML text that
`load_hw` (and so `speccc compile --hw` / `speccc run --hw`) reads.

The text is the unit shipped to workers (a remote worker may not share our disk); each
worker writes it to a private file once, because the passes take `hw` as a name or path.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import tomllib
from pathlib import Path

from speccc.errors import SpecccError

SECTION_ORDER = ("npu", "link", "pim", "pim.pu", "pim.timing", "energy")


def variant_text(base: str, knobs: dict, header: str = "") -> str:
    """TOML of preset/file `base` with `knobs` ({"npu.pes": 8}) applied; validated. A
    system description (a [system] table: GPUs, AttAcc) gets them as its [system.knobs],
    which edit the device preset of its PIM stacks (and NPU) where they apply
    (speccc.hw.system)."""
    from speccc.hw.config import load_hw
    hw = load_hw(base, system=True)
    raw = tomllib.loads(hw_text(base))
    if "system" in raw:
        return header + _system_variant(base, hw, raw, knobs)
    for key, value in knobs.items():
        *path, name = key.split(".")
        node = raw
        for p in path:
            node = node[p]
        node[name] = value
    if knobs:
        raw["name"] = f"{hw.name}+" + ",".join(f"{k}={v}" for k, v in knobs.items())
    text = header + dumps(raw)
    try:
        load_text(text)
    except SpecccError as err:
        raise _knob_error(base, knobs, text, err) from None
    return text


def _system_variant(base: str, hw, raw: dict, knobs: dict) -> str:
    """A system's text with the knobs appended as [system.knobs] and named after them."""
    import re
    text = hw_text(base)
    if not knobs:
        return text
    if "knobs" in raw["system"]:
        raise SpecccError(f"hardware {base}: has its own [system.knobs]; the space's knobs "
                          f"({', '.join(knobs)}) would replace them: fold them into one")
    name = f"{hw.name}+" + ",".join(f"{k}={v}" for k, v in knobs.items())
    text = re.sub(r'(?m)^name\s*=\s*"[^"\n]*"', lambda m: f"name = {_val(name)}", text,
                  count=1)
    text += "\n[system.knobs]\n" + "".join(f"{_val(k)} = {_val(v)}\n"
                                            for k, v in knobs.items())
    try:
        load_text(text)
    except SpecccError as err:
        raise _knob_error(base, knobs, text, err) from None
    return text


def _knob_error(base: str, knobs: dict, text: str, err: SpecccError) -> SpecccError:
    """The variant's error located at the base and the knobs, without the private file
    name the variant was loaded from."""
    what = ", ".join(f"{k} = {v!r}" for k, v in knobs.items())
    msg = str(err).replace(f"{Path(hw_path(text)).name}: ", "")
    return SpecccError(f"hardware {base} with {what}: {msg}")


def hw_text(base: str) -> str:
    from importlib import resources

    from speccc.hw.config import preset_names, system_names
    if base in preset_names():
        return (resources.files("speccc.hw") / "presets" / f"{base}.toml").read_text()
    if base in system_names():
        return (resources.files("speccc.hw") / "systems" / f"{base}.toml").read_text()
    return Path(base).read_text(encoding="utf-8")


def dumps(raw: dict) -> str:
    """The hardware schema's TOML: top-level strings, then the dotted sections."""
    lines = [f"{k} = {_val(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for dotted in SECTION_ORDER:
        node = raw
        for p in dotted.split("."):
            node = node[p]
        lines += ["", f"[{dotted}]"]
        lines += [f"{k} = {_val(v)}" for k, v in node.items() if not isinstance(v, dict)]
    return "\n".join(lines) + "\n"


def _val(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return repr(v)
    return str(v)


_FILES: dict = {}


def hw_path(text: str) -> str:
    """A private file holding `text` (one per process and text)."""
    key = hashlib.sha1(text.encode()).hexdigest()[:16]
    if key not in _FILES or not os.path.exists(_FILES[key]):
        d = Path(tempfile.gettempdir()) / f"speccc-dse-{os.getpid()}"
        d.mkdir(exist_ok=True)
        path = d / f"hw-{key}.toml"
        path.write_text(text, encoding="utf-8")
        _FILES[key] = str(path)
    return _FILES[key]


def load_text(text: str):
    from speccc.hw.config import load_hw
    return load_hw(hw_path(text), system=True)
