"""Machine-learning scores as a lazy column: a model applied to per-event or per-object awkward
features, one batch per partition.

``scores(model, [f1, f2, ...])`` takes features of one structure (one value per event, or one
per object such as ``events.Jet.pt``) and returns the model's score with that structure: eager
for awkward arrays, a dask-awkward column (one task per partition) for lazy ones. Models are
xgboost (``.ubj``, ``.json``, ``.model``) and ONNX (``.onnx``, run by ONNX Runtime on the CPU);
each process loads a model once (by path and modification time), so graphs carry only the path.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from brewflow.arrays import metadata_pass
from brewflow.errors import BrewflowError

__all__ = ["ModelError", "load", "n_features", "predict", "scores"]


class ModelError(BrewflowError, ValueError):
    """A model that cannot be used, or features that do not fit it."""


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> tuple[str, Any]:
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1  # dask provides the parallelism
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                path, options, providers=["CPUExecutionProvider"]
            )
            return "onnx", session
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(path)
        booster.set_param({"nthread": 1})
        return "xgboost", booster
    except ImportError as err:
        raise ModelError(f"model {path!r} needs {err.name}: pip install {err.name}") from err
    except Exception as err:  # the libraries raise their own error types for bad files
        raise ModelError(f"cannot load model {path!r}: {err}") from err


def load(path: str | Path) -> tuple[str, Any]:
    """``(kind, model)``: ``("xgboost", Booster)`` or ``("onnx", InferenceSession)``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} does not exist")
    return _load(str(path), path.stat().st_mtime_ns)


def n_features(path: str | Path) -> int:
    """How many features the model expects."""
    kind, model = load(path)
    if kind == "xgboost":
        return int(model.num_features())
    shape = model.get_inputs()[0].shape
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise ModelError(f"ONNX model {str(path)!r}: input shape {shape} is not (batch, features)")
    return shape[1]


def predict(path: str | Path, matrix: np.ndarray) -> np.ndarray:
    """The model's score for each row of ``matrix`` (rows: candidates, columns: features),
    float32. ONNX models with several outputs give their first; a (n, 1) output is flattened,
    a (n, 2) probability output gives the second column (the positive class)."""
    kind, model = load(path)
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    expected = n_features(path)
    if matrix.ndim != 2 or matrix.shape[1] != expected:
        raise ModelError(
            f"model {str(path)!r} expects {expected} features per row; got shape {matrix.shape}"
        )
    if len(matrix) == 0:
        return np.zeros(0, dtype=np.float32)
    if kind == "xgboost":
        import xgboost

        return model.predict(xgboost.DMatrix(matrix, nthread=1)).astype(np.float32)  # (one
        # thread: the job's workers are the parallelism; OpenMP threads do not survive a fork)
    name = model.get_inputs()[0].name
    out = np.asarray(model.run(None, {name: matrix})[0], dtype=np.float32)
    if out.ndim == 2 and out.shape[1] == 2:
        out = out[:, 1]
    return out.reshape(len(matrix))


def _apply(path: str, version: int | None, *features: ak.Array) -> ak.Array:
    """One partition: flatten the features to a matrix, predict, restore the structure
    (``version``, the model's modification time, only makes the task's token)."""
    first = features[0]
    if metadata_pass(*features):
        return ak.values_astype(first, np.float32)
    flat = [ak.to_numpy(ak.flatten(f, axis=None)) for f in features]
    out = predict(path, np.stack(flat, axis=1)) if flat else np.zeros(0, np.float32)
    if first.ndim == 1:
        return ak.Array(out)
    return ak.unflatten(out, ak.num(first, axis=1))


def scores(path: str | Path, features: Sequence[Any]) -> Any:
    """The model's score per event (features of one value per event) or per object (jagged
    features of one structure), lazily when the features are dask-awkward arrays."""
    features = list(features)
    if not features:
        raise ModelError("no features given")
    expected = n_features(path)
    if len(features) != expected:
        raise ModelError(
            f"model {str(path)!r} expects {expected} features; {len(features)} were given"
        )
    import dask_awkward as dak

    path = str(Path(path).resolve())
    if isinstance(features[0], dak.Array):
        meta = ak.values_astype(features[0]._meta, np.float32)
        version = Path(path).stat().st_mtime_ns  # in the task's token: a new model, new keys
        return dak.map_partitions(_apply, path, version, *features, label="model-scores", meta=meta)
    return _apply(path, None, *[ak.Array(f) for f in features])
