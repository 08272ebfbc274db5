"""Mutations of valid input files toward the classes issue 17 found crashing or hanging:
non-UTF-8 bytes, deep nesting, huge counts, extreme numbers, markup and NULs, truncation.
One set of mutators serves both the hypothesis strategies (property tests) and the fixed
seeded CLI corpus (tests/test_cli_fuzz.py). Imported as a plain module (tests/ is on
sys.path)."""
from __future__ import annotations

import random
import re

from hypothesis import strategies as st

NON_UTF8 = [b"\xff", b"\xfe", b"\xc0\xaf", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]
EXTREME_NUMBERS = ["1e309", "-1e309", "nan", "inf", "-inf", "1e-300", "0", "-1", "-0.0",
                   "99999999999999999999", "18446744073709551616", "-9223372036854775809",
                   "1000000000000", "4294967296", "1e20", "0x7fffffff", "1_000", "1.5"]
JUNK = ["[/x]", "[red]", "$x$ $", "\0", "\t", "\r", "\\", '"', "'", "{", "}", "%", "@", "#",
        "\u202e", "é", "\n\n", " = ", ",", "..", "../../etc/passwd"]
_NUMBER = re.compile(rb"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def _at(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data) + 1)


def non_utf8(data: bytes, rng: random.Random) -> bytes:
    i = _at(data, rng)
    return data[:i] + rng.choice(NON_UTF8) + data[i:]


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    n = rng.choice([65, 200, 1000, 5000])
    opener, closer = rng.choice([(b"[", b"]"), (b"{", b"}"), (b"(", b")"),
                                 (b"loop 2 {\n", b"}\n")])
    i = _at(data, rng)
    return data[:i] + opener * n + closer * n + data[i:]


def extreme_number(data: bytes, rng: random.Random) -> bytes:
    nums = list(_NUMBER.finditer(data))
    if not nums:
        return data + rng.choice(EXTREME_NUMBERS).encode()
    m = rng.choice(nums)
    return data[:m.start()] + rng.choice(EXTREME_NUMBERS).encode() + data[m.end():]


def junk(data: bytes, rng: random.Random) -> bytes:
    i = _at(data, rng)
    return data[:i] + rng.choice(JUNK).encode() + data[i:]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:_at(data, rng)]


def duplicate(data: bytes, rng: random.Random) -> bytes:
    i, j = sorted((_at(data, rng), _at(data, rng)))
    k = _at(data, rng)
    return data[:k] + data[i:j] + data[k:]


def drop_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    if len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def flip_byte(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]


TEXT_MUTATORS = [non_utf8, deep_nesting, extreme_number, extreme_number, junk, truncate,
                 duplicate, drop_line]
BINARY_MUTATORS = [flip_byte, flip_byte, truncate, duplicate, junk, extreme_number]


def mutate(data: bytes, rng: random.Random, mutators=TEXT_MUTATORS) -> bytes:
    """One to three mutations; never returns the input unchanged."""
    out = data
    for _ in range(rng.randint(1, 3)):
        out = rng.choice(mutators)(out, rng)
    return out if out != data else out + b"\xff"


def mutants(seed: bytes, n: int, rng_seed: int, mutators=TEXT_MUTATORS) -> list[bytes]:
    rng = random.Random(rng_seed)
    return [mutate(seed, rng, mutators) for _ in range(n)]


# ---------------------------------------------------------------- hypothesis -------
def mutated(seeds: list[bytes], mutators=TEXT_MUTATORS):
    """Strategy: a mutation of one of `seeds` (shrinks toward fewer/simpler edits)."""
    return st.builds(lambda s, r: mutate(s, r, mutators), st.sampled_from(seeds),
                     st.randoms(use_true_random=False))


extreme_ints = st.one_of(st.integers(min_value=-(1 << 70), max_value=1 << 70),
                         st.sampled_from([0, -1, 1 << 63, 1 << 64, 10**20]))
extreme_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                           st.sampled_from([1e308, 1e-300, -0.0, 5e-324]))


# ---------------------------------------------------------------- ONNX fields ------
def onnx_field_mutant(model_bytes: bytes, rng: random.Random) -> bytes:
    """A model that still parses as protobuf but carries hostile field values (the
    "crafted ONNX" of issue 17): dims, names, opsets, types, external data, attributes."""
    import onnx
    m = onnx.ModelProto()
    m.ParseFromString(model_bytes)
    g = m.graph
    vis = list(g.input) + list(g.output)
    choice = rng.randrange(9)
    if choice == 0 and vis:  # a dim: negative, zero, huge
        vi = rng.choice(vis)
        dims = vi.type.tensor_type.shape.dim
        if dims:
            rng.choice(list(dims)).dim_value = rng.choice([-1, 0, 1 << 40, 1 << 62])
    elif choice == 1:  # names: junk, empty, duplicates
        name = rng.choice(["", "a b", "../../x", "x\x01", "[/x]", g.input[0].name])
        target = rng.choice(vis + list(g.node))
        target.name = name
    elif choice == 2:  # opset
        m.opset_import[0].version = rng.choice([0, 1, 6, 99, -3, 1 << 40])
    elif choice == 3 and g.initializer:  # element type
        g.initializer[0].data_type = rng.choice([0, 8, 16, 23, 999])
    elif choice == 4 and g.initializer:  # external data pointing anywhere
        t = g.initializer[0]
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for k, v in (("location", rng.choice(["/etc/passwd", "../x", "w.bin", "", "a\0b"])),
                     ("offset", rng.choice(["0", "-5", "1e9", "x"])),
                     ("length", rng.choice(["4", "-1", str(1 << 40)]))):
            e = t.external_data.add()
            e.key, e.value = k, v
        t.ClearField("raw_data")
        t.ClearField("float_data")
    elif choice == 5 and g.initializer:  # dims that disagree with the data
        g.initializer[0].dims[:] = rng.choice([[3], [1 << 40], [0, 8], [-1, 8]])
    elif choice == 6 and g.node:  # an op type or domain nobody has
        n = rng.choice(list(g.node))
        n.op_type, n.domain = rng.choice([("Foo", ""), ("Relu", "acme"), ("", ""),
                                          ("Loop", ""), ("Split", "")])
    elif choice == 7 and g.node:  # an attribute with an extreme value
        n = rng.choice(list(g.node))
        n.attribute.append(onnx.helper.make_attribute(
            rng.choice(["axis", "perm", "to", "alpha"]),
            rng.choice([1 << 40, -(1 << 40), float("nan"), [1 << 62], "x"])))
    else:  # a node input that does not exist / graph output never produced
        n = rng.choice(list(g.node))
        n.input.append(rng.choice(["nope", "", g.output[0].name]))
    return m.SerializeToString()
