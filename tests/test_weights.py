from __future__ import annotations

import numpy as np
import pytest

from brewflow.weights import Weights

GEN = np.array([1.0, -2.0, 0.5])
PU = np.array([0.9, 1.1, 1.0])
PU_UP = np.array([1.0, 1.2, 1.1])
PU_DOWN = np.array([0.8, 1.0, 0.9])


@pytest.fixture
def weights() -> Weights:
    w = Weights()
    w.add("gen", GEN)
    w.add("pileup", PU, up=PU_UP, down=PU_DOWN)
    return w


def test_products_and_variations(weights):
    np.testing.assert_allclose(weights.weight(), GEN * PU)
    np.testing.assert_allclose(weights.weight("pileupUp"), GEN * PU_UP)
    np.testing.assert_allclose(weights.weight("pileupDown"), GEN * PU_DOWN)
    assert weights.variations == ["pileupUp", "pileupDown"]
    np.testing.assert_allclose(weights.partial_weight(exclude=["pileup"]), GEN)
    np.testing.assert_allclose(weights.partial_weight(include=["pileup"]), PU)


def test_errors(weights):
    with pytest.raises(KeyError, match="unknown weight variation 'genUp'"):
        weights.weight("genUp")
    with pytest.raises(ValueError, match="both up and down"):
        weights.add("x", GEN, up=GEN)
    with pytest.raises(KeyError, match="unknown weights"):
        weights.partial_weight(exclude=["nope"])
    with pytest.raises(ValueError, match="no weights"):
        Weights().weight()
