"""ML scores as lazy columns equal the models' direct predictions, per event and per object."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest
import xgboost

from brewflow.analysis import Context
from brewflow.demo.physics import BDT_FEATURES, analysis, bdt_features, train_bdt
from brewflow.inference import ModelError, n_features, scores
from brewflow.nanoevents.reader import eager_events, lazy_events


def _jagged(rng, counts, n):
    return [
        ak.unflatten(rng.normal(size=counts.sum()).astype(np.float32), counts) for _ in range(n)
    ]


def test_real_xgboost_model_per_object_lazy_equals_direct(shared_data):
    model = shared_data / "ml" / "xgboost_example.ubj"
    assert n_features(model) == 16  # the shared model's feature count
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, size=300)
    features = _jagged(rng, counts, 16)
    lazy = scores(model, [dak.from_awkward(f, npartitions=4) for f in features])
    assert lazy.npartitions == 4
    computed = lazy.compute()
    matrix = np.stack([ak.flatten(f).to_numpy() for f in features], axis=1)
    direct = xgboost.Booster(model_file=str(model)).predict(xgboost.DMatrix(matrix))
    assert ak.num(computed).tolist() == counts.tolist()
    np.testing.assert_array_equal(ak.flatten(computed).to_numpy(), direct.astype(np.float32))
    eager = scores(model, features)
    assert ak.all(ak.flatten(eager) == ak.flatten(computed))
    with pytest.raises(ModelError, match="expects 16 features; 3 were given"):
        scores(model, features[:3])


def _logistic_onnx(path: Path, weights: np.ndarray, bias: float) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["score"]),
        ],
        "logistic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, len(weights)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        [
            numpy_helper.from_array(weights.reshape(-1, 1).astype(np.float32), "w"),
            numpy_helper.from_array(np.array([bias], dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def test_onnx_model_per_event_lazy_equals_direct(tmp_path):
    import onnxruntime

    path = tmp_path / "logistic.onnx"
    weights = np.array([0.5, -1.0, 0.25], dtype=np.float32)
    _logistic_onnx(path, weights, 0.1)
    rng = np.random.default_rng(5)
    features = [ak.Array(rng.normal(size=1000).astype(np.float32)) for _ in range(3)]
    lazy = scores(path, [dak.from_awkward(f, npartitions=3) for f in features]).compute()
    matrix = np.stack([f.to_numpy() for f in features], axis=1)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    direct = session.run(None, {"x": matrix})[0][:, 0]
    np.testing.assert_array_equal(lazy.to_numpy(), direct)
    np.testing.assert_allclose(direct, 1 / (1 + np.exp(-(matrix @ weights + 0.1))), rtol=1e-5)
    with pytest.raises(ModelError, match="does not exist"):
        scores(tmp_path / "missing.onnx", features)


def test_demo_bdt_is_deterministic_and_lazy_scores_equal_direct(demo_set, tmp_path):
    config = demo_set["config"]
    files = {name: d["files"] for name, d in config["datasets"].items()}
    first, second = tmp_path / "a.ubj", tmp_path / "b.ubj"
    for path in (first, second):
        train_bdt(files["ttbar"], files["dy"] + files["ww"], str(path), seed=7)
    assert first.read_bytes() == second.read_bytes()  # same inputs, same bytes

    model = config["models"]["bdt"]
    context = Context("ttbar", False, models={"bdt": model})
    path = files["ttbar"][0]
    lazy = analysis(lazy_events(path, step_size=400), context).variables["bdt"].compute()
    eager = analysis(eager_events(path), context).variables["bdt"]
    plain = analysis(eager_events(path), Context("ttbar", False)).variables
    matrix = np.stack([np.asarray(c) for c in bdt_features(plain)], axis=1)
    assert matrix.shape[1] == len(BDT_FEATURES)
    direct = xgboost.Booster(model_file=model).predict(xgboost.DMatrix(matrix))
    np.testing.assert_array_equal(ak.to_numpy(lazy), direct.astype(np.float32))
    np.testing.assert_array_equal(ak.to_numpy(eager), direct.astype(np.float32))
    assert 0.3 < float(np.mean(direct)) < 1.0  # it learned: ttbar scores high
