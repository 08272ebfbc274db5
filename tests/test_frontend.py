"""Frontend behaviour beyond single ops: lazy external data, shapes-only, folding."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from speccc import zoo
from speccc.errors import SpecccError
from speccc.frontend.onnx_import import ImportOptions, import_model
from speccc.ir.interpreter import run_graph
from speccc.pipeline import run_canonical


def _feeds(T=4):
    return {"input_ids": np.arange(T, dtype=np.int64)[None] % 7,
            "position_ids": np.arange(T, dtype=np.int64)[None]}


@pytest.fixture
def external_model(tmp_path):
    model = zoo.build("llama-tiny", mode="prefill")
    path = tmp_path / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.bin", size_threshold=0)
    return path


def test_external_data_loads_lazily_and_matches_onnxruntime(external_model):
    module = import_model(external_model)
    store = module.weights_of("target")
    assert store.names() and not any(store.is_loaded(n) for n in store.names())
    run_canonical(module)
    got = run_graph(module.graphs["target"], _feeds())
    assert all(store.is_loaded(n) for n in store.names())
    sess = ort.InferenceSession(str(external_model), providers=["CPUExecutionProvider"])
    ref = sess.run(["logits"], _feeds())[0]
    assert np.max(np.abs(got["logits"] - ref)) / max(1, np.max(np.abs(ref))) < 1e-4


def test_shapes_only_never_reads_data(external_model):
    (external_model.parent / "ext.bin").unlink()
    module = import_model(external_model, ImportOptions(shapes_only=True))
    run_canonical(module)
    assert module.weights_of("target").names() == []
    with pytest.raises(SpecccError, match="no data"):
        run_graph(module.graphs["target"], _feeds())


def test_missing_external_data_is_a_clear_error_at_use(external_model):
    (external_model.parent / "ext.bin").unlink()
    module = import_model(external_model)  # lazy: importing reads nothing
    run_canonical(module)
    with pytest.raises(SpecccError, match="cannot read weight data"):
        run_graph(module.graphs["target"], _feeds())


@pytest.mark.parametrize("name", ["llama-tiny", "gpt2-tiny"])
def test_shape_subgraphs_fold_away(tmp_path, name):
    path = tmp_path / "m.onnx"
    zoo.save(zoo.build(name, mode="decode"), path)
    module = import_model(path)
    ops = {op.name for op in module.graphs["target"].ops()}
    assert not ops & {"shape", "size", "constant_of_shape"}, ops


def test_onnx_shape_inference_cross_checks_our_shape_rules(monkeypatch):
    """A wrong shape rule (here: transpose ignoring its perm) is caught at import."""
    from onnx import TensorProto, helper

    from speccc.ir import opdefs
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
         helper.make_node("Relu", ["t"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 18)])
    import_model(model)  # the real rule agrees with ONNX
    od = opdefs.lookup("transpose")
    monkeypatch.setattr(od, "infer", lambda ctx: [ctx.types[0]])
    with pytest.raises(SpecccError, match="ONNX shape inference gives"):
        import_model(model)
