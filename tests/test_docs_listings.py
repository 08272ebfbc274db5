"""docs/pim.md's account of count-1 loops agrees with the listings compile writes."""
from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import invoke

DOC = Path(__file__).resolve().parents[1] / "docs" / "pim.md"


def test_count_one_loops_are_kept_as_the_doc_says(tmp_path, decode_pair):
    doc = " ".join(DOC.read_text().split())
    assert "count-1 loops are kept" in doc
    out = tmp_path / "out"
    res = invoke("compile", decode_pair / "target.onnx", "--bind", "T=1,P=16", "-o", out)
    assert res.exit_code == 0, res.output
    listings = {p.name: p.read_text() for p in (out / "pim").glob("*.pim")}
    gemv = [t for n, t in listings.items() if n.endswith(".gemv.pim")]
    assert gemv
    shown = set(re.findall(r"`(loop \w+ 1 \{)`", doc))
    found = {m for t in listings.values() for m in re.findall(r"loop \w+ 1 \{", t)}
    # every count-1 loop the doc shows is one compile writes; small GEMVs keep loop c 1
    assert shown and shown <= found, (shown, found)
    assert any("loop c 1 {" in t for t in gemv)
