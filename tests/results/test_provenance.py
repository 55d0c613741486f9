"""Every output says what made it: brewflow version and commit, config hash, input files with
size and ROOT UUID, payload hashes, package versions; ``brewflow provenance FILE`` prints it."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

import pytest

from brewflow.cli import main
from brewflow.outputs import fit_inputs as shapes
from brewflow.outputs import plots, tables
from brewflow.results import provenance
from brewflow.results.model import save
from tests.helpers import make_result


def _results(tmp_path):
    payload = tmp_path / "sf.json"
    payload.write_text('{"schema_version": 2, "corrections": []}')
    config = {"luminosity": 1.0}
    made = []
    for name, path, uuid in (("a", "a.root", "u-a"), ("b", "b.root", "u-b")):
        r = make_result(name, "nominal", [0.5, 1.5, 2.5], [1.0, 1.5, 0.5], process=name)
        r.meta["provenance"] = provenance.record(
            config=config, inputs=[{"path": path, "size": 10, "uuid": uuid}], payloads=[payload]
        )
        made.append(r)
    data = make_result("d", "nominal", [1.5, 2.5], [1.0, 1.0], process="data", is_data=True)
    data.meta["provenance"] = provenance.record(
        config=config, inputs=[{"path": "d.root", "size": 7, "uuid": "u-d"}]
    )
    return [*made, data], payload, config


def test_record_names_versions_config_inputs_and_payload_hashes(tmp_path):
    results, payload, config = _results(tmp_path)
    record = provenance.of(results)
    assert record["brewflow"] == metadata.version("brewflow")
    assert record["packages"]["uproot"] == metadata.version("uproot")
    assert record["config"] == [provenance.config_hash(config)]
    assert record["inputs"] == {
        "a.root": {"size": 10, "uuid": "u-a"},
        "b.root": {"size": 10, "uuid": "u-b"},
        "d.root": {"size": 7, "uuid": "u-d"},
    }
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    assert record["payloads"] == {str(payload): f"sha256:{digest}"}
    assert "date" not in json.dumps(record).lower()  # nothing that changes between builds
    summary = provenance.compact(record)["inputs"]
    assert summary["files"] == 3
    assert len(summary["sha256"]) == 64


@pytest.mark.parametrize("ext", ["png", "pdf", "svg"])
def test_plots_tables_shapes_and_datacards_carry_it(ext, tmp_path, capsys):
    results, _, _ = _results(tmp_path)
    expected = provenance.compact(provenance.of(results))
    plot = tmp_path / f"x.{ext}"
    plots.data_mc(results, "x", "r", [plot], styles={}, luminosity=1.0)
    assert provenance.read(plot) == expected
    tables.write_tables(results, results, "r", tmp_path / "cutflow")
    for suffix in ("md", "tex", "csv"):
        assert provenance.read(tmp_path / f"cutflow.{suffix}") == expected
    channels = shapes.channels_of(results, ["r"])
    shapes.write_shapes(channels, "x", tmp_path / "x.root")
    assert provenance.read(tmp_path / "x.root") == expected
    card = tmp_path / "x.txt"
    shapes.write_datacard(shapes.datacard(channels, "x", "x.root", ["a"]), card)
    assert provenance.read(card) == expected
    assert main(["provenance", str(plot)]) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_result_files_carry_the_full_record(tmp_path, capsys):
    results, _, _ = _results(tmp_path)
    save(results[0], tmp_path / "a.json")
    assert main(["provenance", str(tmp_path / "a.json")]) == 0
    assert json.loads(capsys.readouterr().out) == results[0].meta["provenance"]
    (tmp_path / "plain.md").write_text("# no provenance here\n")
    assert main(["provenance", str(tmp_path / "plain.md")]) == 2
    assert "carries no brewflow provenance" in capsys.readouterr().err


def test_one_file_under_two_names_is_refused_wherever_outputs_meet(tmp_path):
    """Regression (issue 27 review): a copy of one file in datasets of two processes was
    counted twice (the checks were per dataset and per process). Every output made from
    others (stacks, tables, plots, the report) refuses one file under two names."""
    from brewflow.errors import InputError

    a = {"provenance": provenance.record(inputs=[{"path": "dy.root", "size": 9, "uuid": "u"}])}
    b = {"provenance": provenance.record(inputs=[{"path": "copy.root", "size": 9, "uuid": "u"}])}
    with pytest.raises(InputError, match=r"'copy.root' and 'dy.root' are the same file"):
        provenance.combine([a["provenance"], b["provenance"]])
    same = provenance.combine([a["provenance"], a["provenance"]])  # one name: fine
    assert list(same["inputs"]) == ["dy.root"]
