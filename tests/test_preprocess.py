from __future__ import annotations

import numpy as np
import pytest
import uproot

from brewflow.config import validate
from brewflow.preprocess import InputError, inspect_file, preprocess


def test_entries_and_sum_of_weights(demo_set):
    config = validate(demo_set["config"])
    inventory = preprocess(config, "dy")
    files = config["datasets"]["dy"]["files"]
    assert [f["path"] for f in inventory["files"]] == files
    weights = np.concatenate(
        [uproot.open(f)["Events"]["genWeight"].array(library="np") for f in files]
    ).astype(np.float64)
    assert inventory["entries"] == len(weights)
    assert inventory["sumw"] == pytest.approx(weights.sum(), rel=1e-12)
    assert all(len(f["uuid"]) == 36 for f in inventory["files"])
    assert "sumw" not in preprocess(config, "data")


def test_bad_inputs_are_named(tmp_path, demo_set):
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"not a root file")
    with pytest.raises(InputError, match=r"dataset 'x', file '.*junk\.root': cannot open"):
        inspect_file(str(junk), "Events", is_data=True, dataset="x")
    data_file = demo_set["config"]["datasets"]["data"]["files"][0]
    with pytest.raises(InputError, match="no tree 'Tree'"):
        inspect_file(data_file, "Tree", is_data=True, dataset="x")
    with pytest.raises(InputError, match=r"without a 'genWeight'.*is_data: true"):
        inspect_file(data_file, "Events", is_data=False, dataset="x")
