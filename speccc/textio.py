"""Reading the text files users hand speccc (IR, listings, TOML, traces), refusing what
would hang or crash a parser: a FIFO or device (`asm /dev/zero` read until memory ran
out), more bytes than any real listing, bytes that are not UTF-8, nesting deeper than any
real file (the parsers' transformers recurse). Every refusal is a located one-line error.

A leaf module like speccc.errors: ir/, hw/, targets/ and runtime/ may all import it.
"""
from __future__ import annotations

import json
import os
import re
import stat

from speccc.errors import ParseError, SpecccError

MAX_TEXT_BYTES = 256 << 20  # a 7B model's listings are ~300 KB; its IR a few MB
MAX_NESTING = 64  # brackets/braces/loops; real files stay under 10

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file"))


def memory_bytes() -> int:
    """This machine's physical memory: one input or weight declaring more than half of it
    is refused before it is read (a 144-byte ONNX declared a 16 GiB weight)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def file_kind(mode: int) -> str:
    """What a non-regular file is called in errors ("a FIFO", "a character device", ...)."""
    return next((n for pred, n in _KINDS if pred(mode)), "not a regular file")


def check_regular_file(path) -> os.stat_result:
    """stat of `path` (symlinks followed) if it is a regular file, else a SpecccError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SpecccError("no such file", location=str(path)) from None
    except OSError as e:
        raise SpecccError(f"cannot read ({e.strerror})", location=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecccError(f"is {file_kind(st.st_mode)}; expected a regular file",
                          location=str(path))
    return st


def decode(data: bytes, name: str) -> str:
    """UTF-8 (a byte-order mark is allowed and dropped), or a ParseError at line:col."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ParseError(f"not UTF-8 text (byte 0x{data[e.start]:02x})",
                         location=f"{name}:{line}:{col}") from None


def read_text(path, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    st = check_regular_file(path)
    if st.st_size > max_bytes:
        raise SpecccError(f"{st.st_size:,} bytes is more than the {max_bytes:,} a speccc "
                          "text file may have", location=str(path))
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)  # a file growing meanwhile stays bounded too
    if len(data) > max_bytes:
        raise SpecccError(f"more than {max_bytes:,} bytes", location=str(path))
    return decode(data, str(path))


def load_toml(path, what: str) -> dict:
    """A TOML file as a dict: a missing file is `PATH: no such WHAT file`, bad TOML
    `NAME: invalid TOML: ...` (speccc dse's space and suite files)."""
    import tomllib
    from pathlib import Path
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecccError(f"{path}: no such {what} file") from None
    except tomllib.TOMLDecodeError as err:
        raise SpecccError(f"{Path(path).name}: invalid TOML: {err}") from None


_BRACKETS = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\](){}]')
_OPEN = {"[": "]", "(": ")", "{": "}"}


def check_nesting(text: str, name: str, limit: int = MAX_NESTING) -> None:
    """Refuse brackets nested deeper than `limit` (quoted strings skipped) before a
    recursive parser or transformer sees them."""
    depth = 0
    for m in _BRACKETS.finditer(text):
        ch = m.group()
        if ch in _OPEN:
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, m.start()) + 1
                col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
                raise ParseError(f"nested deeper than {limit} levels",
                                 location=f"{name}:{line}:{col}")
        elif ch in ")]}":
            depth = max(0, depth - 1)


def dumps_json(obj, **kwargs) -> str:
    """JSON text, never with `Infinity`/`NaN` (not JSON; readers reject them): a
    non-finite number means an input overflowed, which is the input's error."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        raise SpecccError("a result is not a finite number (inf or nan): an input (e.g. an "
                          "energy or timing in the hardware description) is out of range") \
            from None


def check_json_finite(text: str, name: str) -> None:
    """Refuse JSON text holding `Infinity`/`NaN` (what json.dumps writes by default)."""
    def bad(token):
        raise SpecccError(f"would contain {token}, which is not JSON: an input (e.g. an "
                          "energy or timing in the hardware description) is out of range",
                          location=name)
    try:
        json.loads(text, parse_constant=bad)
    except json.JSONDecodeError:
        pass  # not JSON at all: the writer's business; only non-finite numbers matter here
