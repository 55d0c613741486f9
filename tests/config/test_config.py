from __future__ import annotations

import copy
import os

import pytest
import yaml

from brewflow.config import ConfigError, dataset_files, load_config, process_of, validate
from tests.helpers import DEMO_CONFIG


@pytest.fixture
def config(demo_set) -> dict:
    return copy.deepcopy(demo_set["config"])


def _write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_demo_config_is_valid_and_defaults_are_filled():
    config = load_config(DEMO_CONFIG)
    assert config["tree"] == "Events"
    assert config["scheduler"] == "processes"
    assert config["datasets"]["data"]["is_data"] is True
    assert config["datasets"]["dy"]["is_data"] is False
    assert config["histograms"]["mll"]["log"] is False
    assert config["plots"]["ratio_range"] == [0.5, 1.5]
    assert process_of(config, "ttbar") == "top"
    assert process_of(config, "data") == "data"


def test_unknown_key_is_named(config):
    config["datasets"]["dy"]["xsecc"] = 1.0
    with pytest.raises(ConfigError, match=r"datasets\.dy.*'xsecc' was unexpected"):
        validate(config)


def test_a_negative_demo_seed_is_named(config):
    """(numpy refuses it: the generate job ended in an 'unexpected' ValueError)"""
    config["generate"]["seed"] = -1
    with pytest.raises(ConfigError, match=r"generate\.seed.*-1 is less than the minimum of 0"):
        validate(config)


def test_mc_without_cross_section(config):
    del config["datasets"]["ttbar"]["xsec"]
    with pytest.raises(ConfigError, match=r"datasets\.ttbar.*'xsec' is a required property"):
        validate(config)


def test_missing_file_is_named(config, tmp_path):
    del config["datasets"]["ww"]["generator"]
    config["datasets"]["ww"]["files"] = [str(tmp_path / "nope.root")]
    with pytest.raises(ConfigError, match=r"datasets\.ww\.files.*nope\.root.*does not exist"):
        validate(config)


def test_glob_without_match(config, tmp_path):
    del config["datasets"]["ww"]["generator"]
    config["datasets"]["ww"]["files"] = [str(tmp_path / "*.root")]
    with pytest.raises(ConfigError, match="matches no file"):
        validate(config)


def test_globs_expand_sorted(config, demo_set):
    del config["datasets"]["dy"]["generator"]
    config["datasets"]["dy"]["files"] = [str(demo_set["directory"] / "dy" / "*.root")]
    files = dataset_files(validate(config), "dy")
    assert files == sorted(str(p) for p in (demo_set["directory"] / "dy").glob("*.root"))
    assert len(files) == 2


def test_duplicate_dataset_names_in_yaml(tmp_path):
    text = DEMO_CONFIG.read_text().replace("  ww:\n", "  dy:\n", 1)
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: duplicate key 'dy'"):
        load_config(_write(tmp_path, text))


def test_malformed_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"c\.yaml.*not valid YAML"):
        load_config(_write(tmp_path, "datasets: [unclosed\n"))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml")


def test_histogram_of_unknown_region(config):
    config["histograms"]["mll"]["regions"] = ["nowhere"]
    with pytest.raises(ConfigError, match=r"histograms\.mll\.regions.*'nowhere'"):
        validate(config)


def test_histogram_binning_must_be_given_once(config):
    config["histograms"]["mll"]["edges"] = [0, 1]
    with pytest.raises(ConfigError, match=r"histograms\.mll.*either"):
        validate(config)


def test_systematic_on_data_is_refused(config):
    config["systematics"]["ps_fsr"]["datasets"] = ["data"]
    with pytest.raises(ConfigError, match="data; systematic variations apply to MC only"):
        validate(config)


def test_later_config_files_update_earlier_ones(tmp_path):
    override = tmp_path / "lumi.yaml"
    override.write_text(yaml.safe_dump({"eras": {"2018": {"luminosity": 123.0}}}))
    config = load_config([DEMO_CONFIG, override])
    assert config["eras"]["2018"]["luminosity"] == 123.0
    assert config["eras"]["2017"]["luminosity"] == 6.0
    assert "dy" in config["datasets"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(luminosity=10.0), r"'luminosity': with 'eras', each era gives"),
        (lambda c: c["datasets"]["dy"].pop("era"), r"'datasets.dy.era': missing; with 'eras'"),
        (
            lambda c: c["datasets"]["dy"].update(era="2016"),
            r"'datasets.dy.era': unknown era '2016'",
        ),
        (lambda c: c["eras"]["2017"].pop("luminosity"), r"eras.2017.*'luminosity' is a required"),
        (
            lambda c: c["eras"]["2017"]["corrections"]["pileup"].update(file="nope.json"),
            r"'eras.2017.corrections.pileup.file': file 'nope.json' does not exist",
        ),
        (
            lambda c: c["fit"].update(histograms=["met"]),
            r"'fit.histograms': 'met' has no workspace",
        ),
        (lambda c: c["histograms"]["mll"].update(blind=[120, 110]), r"'histograms.mll.blind'"),
        (  # regression (issue 27 review): data without a golden JSON passed without a word
            lambda c: c["eras"]["2018"].pop("lumi_mask"),
            r"'datasets.data.lumi_mask': data need the golden JSON .* 'lumi_mask: all'",
        ),
        (  # regression (issue 27 review): passed, then failed mid-run in plot or shapes
            lambda c: [c["datasets"][d].update(era="2018") for d in c["datasets"]],
            r"'eras.2017': no dataset is in this era",
        ),
    ],
)
def test_era_and_fit_mistakes_are_named(change, message):
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    change(config)
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_dataset_era_without_eras_is_refused():
    from tests.helpers import flat_demo_config

    config = flat_demo_config()
    config["datasets"]["dy"]["era"] = "2018"
    with pytest.raises(ConfigError, match=r"'datasets.dy.era': '2018', but the config has no"):
        validate(config)


def test_era_settings_resolve_per_dataset():
    from brewflow.config import era_settings, for_dataset

    config = load_config(DEMO_CONFIG)
    assert config["datasets"]["data_2017"]["lumi_mask"] == "results/generated/golden_2017.json"
    assert config["datasets"]["data"]["lumi_mask"] == "results/generated/golden_2018.json"
    view = for_dataset(config, "dy_2017")
    assert view["luminosity"] == 6.0
    assert view["corrections"]["pileup"]["file"].endswith("demo_2017.json.gz")
    assert view["corrections"]["muon_id"] == config["corrections"]["muon_id"]  # shared
    assert era_settings(config, "2018")["jets"] == config["jets"]


def test_one_file_under_two_names_is_refused(tmp_path, demo_set, monkeypatch):
    """Regression (issue 16.3): ``x.root`` and ``./x.root`` (or a symlink, or the same file in
    two datasets) were read twice, doubling events and yields."""
    import shutil

    from brewflow.config import ConfigError, validate

    monkeypatch.chdir(tmp_path)
    real = demo_set["config"]["datasets"]["dy"]["files"][0]
    shutil.copy(real, "x.root")
    (tmp_path / "link.root").symlink_to(tmp_path / "x.root")
    os.link(tmp_path / "x.root", tmp_path / "zhard.root")  # (sorted after link.root)
    (tmp_path / "folder.root").mkdir()
    base = copy.deepcopy(demo_set["config"])
    for dataset in base["datasets"].values():  # real files, not the generator's
        dataset.pop("generator")
    cases = {
        ("x.root", "./x.root"): r"'datasets\.dy\.files': 'x\.root' and '\./x\.root' are the same",
        ("x.root", "link.root"): r"'x\.root' and 'link\.root' are the same file",
        ("x.root", "zhard.root"): r"'x\.root' and 'zhard\.root' are the same file",
        ("x.root", "*.root"): r"'x\.root' and 'link\.root' are the same file",
        ("x.root", "x.root"): r"'x\.root' listed twice",
        ("folder.root",): r"'folder\.root' is a folder; list its files or use a glob",
        ("folder*",): r"the glob 'folder\*' matches only folders \(folder\.root\)",
    }
    for files, message in cases.items():
        config = copy.deepcopy(base)
        config["datasets"]["dy"]["files"] = list(files)
        with pytest.raises(ConfigError, match=message):
            validate(config)
    config = copy.deepcopy(base)
    config["datasets"]["dy"]["files"] = ["x.root"]
    config["datasets"]["ttbar"]["files"] = ["./x.root"]
    with pytest.raises(
        ConfigError, match=r"'datasets\.ttbar\.files': '\./x\.root' is also in dataset 'dy'"
    ):
        validate(config)


def test_copies_of_one_file_are_refused_by_uuid(tmp_path, demo_set):
    import shutil

    from brewflow.config import validate
    from brewflow.jobs.preprocess import InputError, preprocess

    real = demo_set["config"]["datasets"]["dy"]["files"][0]
    copies = [shutil.copy(real, tmp_path / name) for name in ("a.root", "b.root")]
    config = validate(demo_set["config"])
    config["datasets"]["dy"]["files"] = [str(c) for c in copies]
    with pytest.raises(InputError, match=r"'.*a\.root' and '.*b\.root' are copies of one file"):
        preprocess(config, "dy")


def _write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_alias_bombs_are_refused_quickly(tmp_path):
    """Regression (issue 16.9): a "billion laughs" config ran for minutes and gigabytes."""
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"aliases \(\*name\) expand to [\d,]+ nodes"):
        load_config(_write(tmp_path, "\n".join(lines) + "\n"))
    assert time.perf_counter() - started < 5
    with pytest.raises(ConfigError, match="refers to the node that contains it"):
        load_config(_write(tmp_path, "a: &x [1, *x]\n"))


def test_ordinary_aliases_still_work(tmp_path, demo_set):
    config = copy.deepcopy(demo_set["config"])
    config.pop("plots", None)
    text = yaml.safe_dump(config).replace("luminosity: 0.5", "luminosity: &lumi 0.5")
    path = _write(tmp_path, text + "plots: {formats: [png], label: *lumi}\n")
    with pytest.raises(ConfigError, match=r"plots\.label.*not of type 'string'"):
        load_config(path)  # the alias was expanded: 0.5 where a string belongs


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(luminosity=float("nan")), r"'luminosity': nan is not a finite"),
        (lambda c: c["datasets"]["dy"].update(xsec=float("inf")), r"'datasets\.dy\.xsec': inf"),
        (
            lambda c: c["histograms"].update(mll={"variable": "mll", "edges": [0, float("nan")]}),
            r"'histograms\.mll\.edges\.1': nan is not a finite number",
        ),
        (
            lambda c: c["datasets"]["data"].update(process="dy"),
            r"'datasets\.(data|dy)\.process': process 'dy' would stack data \('data'\) with MC",
        ),
        (
            lambda c: c["shapes"].update(signal=["tt"]),
            r"'shapes\.signal': 'tt' is not an MC process of the config \(MC processes: ",
        ),
        (
            lambda c: c["shapes"].update(signal=["data"]),
            r"'shapes\.signal': 'data' is not an MC process",
        ),
    ],
    ids=[
        "nan_luminosity",
        "inf_xsec",
        "nan_edge",
        "data_in_mc_process",
        "unknown_signal",
        "data_signal",
    ],
)
def test_late_errors_are_caught_by_validation(mutate, message, demo_set):
    """Regression (issue 16.10): each of these failed only in a late job, or not at all."""
    config = copy.deepcopy(demo_set["config"])
    mutate(config)
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_unknown_scheduler_in_the_environment(demo_set, monkeypatch):
    from brewflow.jobs.execution import scheduler_name

    monkeypatch.setenv("BREWFLOW_SCHEDULER", "thread")
    message = r"variable BREWFLOW_SCHEDULER: unknown scheduler 'thread'; use one of threads"
    with pytest.raises(ConfigError, match=message):
        validate(demo_set["config"])
    with pytest.raises(ConfigError, match=message):
        scheduler_name({"scheduler": "threads"})
    monkeypatch.setenv("BREWFLOW_SCHEDULER", "tcp://127.0.0.1:8786")
    assert scheduler_name({"scheduler": "threads"}) == "tcp://127.0.0.1:8786"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["jets"]["jec"].update(mc="demo_MC_L1L2L3ResX"),
            r"'jets' \(or a dataset's 'jec'\): no correction 'demo_MC_L1L2L3ResX'",
        ),
        (
            lambda c: c["systematics"].update(jes_x={"type": "jes", "source": "NoSuchSource"}),
            r"no correction '.*NoSuchSource.*'",
        ),
        (
            lambda c: c["corrections"]["pileup"].update(name="pileupX"),
            r"'corrections\.pileup': no correction 'pileupX'",
        ),
    ],
    ids=["jec_name", "jes_source", "correction_name"],
)
def test_correction_names_are_checked_before_any_job(mutate, message, demo_set, tmp_path):
    """Regression (issue 16.10): jets.jec names were never checked before the analyze jobs."""
    import shutil

    from brewflow.jobs.validation import check_payloads

    config = copy.deepcopy(demo_set["config"])
    payload = shutil.copy(config["generate"]["corrections"], tmp_path / "payload.json.gz")
    for spec in config["corrections"].values():
        spec["file"] = str(payload)
    config["jets"]["file"] = str(payload)
    check_payloads(validate(config))  # the demo's names are right
    mutate(config)
    with pytest.raises(ConfigError, match=message):
        check_payloads(validate(config))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("root:/host//store/x.root", "malformed URL"),
        ("root://", "no host"),
        ("root://host.cern.ch", "no file path"),
        ("root://host.cern.ch:99999//store/x.root", "malformed URL"),
        ("s3://bucket/x.root", "unsupported URL scheme 's3'"),
        ("https://host/x.root?svc=1", "query parameter \\(svc\\)"),
        ("http://host/store/*.root", "an HTTP server cannot be listed"),
        ("/store/mc/X/NANOAODSIM/f1.root", "looks like a logical file name.*redirectors"),
    ],
)
def test_malformed_urls_and_lfns_without_redirectors_are_named(config, entry, message):
    del config["datasets"]["ww"]["generator"]
    config["datasets"]["ww"]["files"] = [entry]
    with pytest.raises(ConfigError, match=rf"datasets\.ww\.files.*{message}"):
        validate(config)


def test_urls_and_logical_names_are_valid_without_contacting_a_server(config):
    """Remote files are checked by preprocessing, not by validation (no network here)."""
    from brewflow.config import dataset_replicas, local_files

    del config["datasets"]["ww"]["generator"]
    config["datasets"]["ww"]["files"] = ["/store/mc/A/f1.root", "root://other.host//store/f2.root"]
    config["datasets"]["ww"]["redirectors"] = ["root://xrootd-cms.infn.it/",
                                               "root://cmsxrootd.fnal.gov:1094"]  # fmt: skip
    config["datasets"]["dy"]["files"] = ["https://host.example/data/dy.root"]
    del config["datasets"]["dy"]["generator"]
    checked = validate(config)
    assert checked["remote"] == {"timeout": 30, "retries": 1, "backoff": 1.0, "retry_after": 300}
    assert local_files(checked, "ww") == []
    assert local_files(checked, "dy") == []
    assert dataset_replicas(checked, "ww", "/store/mc/A/f1.root") == [
        "root://xrootd-cms.infn.it//store/mc/A/f1.root",
        "root://cmsxrootd.fnal.gov:1094//store/mc/A/f1.root",
    ]
    assert dataset_replicas(checked, "ww", "root://other.host//store/f2.root") == [
        "root://other.host//store/f2.root"
    ]
    config["datasets"]["ww"]["redirectors"] = ["cmsxrootd.fnal.gov"]
    with pytest.raises(ConfigError, match=r"datasets\.ww\.redirectors.*is a URL"):
        validate(config)
    config["datasets"]["ww"]["redirectors"] = ["root://a/"]
    config["datasets"]["ww"]["files"] = ["store/relative.root"]
    with pytest.raises(ConfigError, match="entries are logical file names"):
        validate(config)
    config["datasets"]["ww"]["files"] = ["/store/mc/*/f.root"]
    with pytest.raises(ConfigError, match="cannot be a glob"):
        validate(config)


def test_files_from_a_list_relative_to_the_config_file(demo_set, tmp_path):
    """``files_from``: one entry a line (dasgoclient's output), relative to the config file,
    after the dataset's ``files``; an unreadable or empty list is named."""
    config = copy.deepcopy(demo_set["config"])
    del config["datasets"]["ww"]["generator"]
    first, second = config["datasets"]["ww"]["files"]
    folder = tmp_path / "cfg"
    (folder / "datasets").mkdir(parents=True)
    (folder / "datasets" / "ww.txt").write_text(
        f"# dasgoclient -query 'file dataset=...'\n\n{second}\n"
    )
    config["datasets"]["ww"]["files"] = [first]
    config["datasets"]["ww"]["files_from"] = "datasets/ww.txt"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded = load_config(path)
    assert dataset_files(loaded, "ww") == [first, second]
    assert loaded["datasets"]["ww"]["files_from"] == str(folder / "datasets" / "ww.txt")
    del config["datasets"]["ww"]["files"]  # files_from alone
    path.write_text(yaml.safe_dump(config))
    assert dataset_files(load_config(path), "ww") == [second]
    (folder / "datasets" / "ww.txt").write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"datasets\.ww\.files_from.*lists no file"):
        load_config(path)
    config["datasets"]["ww"]["files_from"] = "datasets/missing.txt"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"datasets\.ww\.files_from.*cannot read.*missing\.txt"):
        load_config(path)
    del config["datasets"]["ww"]["files_from"]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"datasets\.ww"):
        load_config(path)  # neither files nor files_from


def test_the_multi_era_example_is_valid(shared_data, monkeypatch):
    """config/examples/cms_multi_era.yaml: 2018 (Run 2) and 2022 (Run 3) with their payloads,
    every correction and JERC name found, nuisances named per era where uncorrelated."""
    from brewflow.config import era_settings, nuisance_names
    from brewflow.jobs.validation import check_payloads
    from tests.helpers import ROOT

    monkeypatch.chdir(ROOT)  # its paths are relative to the repository (../shared/data)
    config = load_config(ROOT / "config" / "examples" / "cms_multi_era.yaml")
    check_payloads(config)
    assert era_settings(config, "2022")["jets"]["rho"] == "Rho_fixedGridRhoFastjetAll"
    assert era_settings(config, "2022")["energy"] == 13.6
    assert nuisance_names(config, "TTto2L2Nu_2022")["jer"] == "jer_2022"
    assert nuisance_names(config, "TTto2L2Nu_2022")["jes"] == "jes"
    assert nuisance_names(config, "DYJetsToLL_M50_2018")["jer"] == "jer_2018"


def test_data_certified_as_a_whole_say_so():
    """`lumi_mask: all`: every lumi block of the data is certified (already filtered): no
    golden JSON is read, for any path (the gate, preprocessing, the workflow's inputs)."""
    from brewflow.config import golden_json, payload_files

    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["eras"]["2018"]["lumi_mask"] = "all"
    config = validate(config)
    assert config["datasets"]["data"]["lumi_mask"] == "all"
    assert golden_json(config, "data") is None
    assert golden_json(config, "data_2017") == "results/generated/golden_2017.json"
    assert not any("golden" in p for p in payload_files(config, "data"))


def test_a_region_inside_a_blinded_one_is_blinded_too():
    """Regression (issue 27 review 2): a region whose cuts extend a blinded region's, or one
    with a window (zmumu + two_jets), showed their data: its cutflow row at the blinded
    region's last cut counted the window's events. It must be blinded the same way."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config.pop("hepdata")  # its locations name the demo's plots of mll
    config["histograms"]["mll"].update(blind=[85, 95], regions=["zmumu", "ttbar_emu"])
    zmumu = config["regions"]["zmumu"]
    config["regions"]["zmumu_2j"] = {"cuts": [*zmumu["cuts"], "two_jets"]}
    window = r"region 'zmumu', which has a blinded window \(mll in \[85, 95\)\)"
    with pytest.raises(
        ConfigError, match=rf"'regions\.zmumu_2j': its cuts include all those of {window}"
    ):
        validate(copy.deepcopy(config))
    config["histograms"]["mll"]["regions"].append("zmumu_2j")  # filled there: its window
    validate(copy.deepcopy(config))
    config["histograms"]["mll"].pop("blind")
    config["regions"]["zmumu"]["blind"] = True
    with pytest.raises(ConfigError, match=r"'regions\.zmumu_2j'.*the blinded region 'zmumu'"):
        validate(copy.deepcopy(config))
    config["regions"]["zmumu_2j"]["blind"] = True
    validate(config)


def _demo_with_fsr_on(names):
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["systematics"]["ps_fsr"]["datasets"] = names
    return config


def test_a_systematic_names_a_process_for_all_its_datasets_in_every_era(caplog):
    """Regression (issue 28): 'datasets' took dataset names only, and the demo's
    'ps_fsr: datasets: [ttbar]' silently left out ttbar_2017; a process name covers every
    dataset of the process, in every era (the demo names the process now)."""
    from brewflow.config import applicable_systematics, systematics_for

    demo = load_config(DEMO_CONFIG)
    assert demo["systematics"]["ps_fsr"]["datasets"] == ["ttbar", "ttbar_2017"]
    tops = [d for d in demo["datasets"] if process_of(demo, d) == "top"]
    for dataset in demo["datasets"]:
        assert ("ps_fsr" in applicable_systematics(demo, dataset)) == (dataset in tops)
    assert "ps_fsrUp" in systematics_for(demo, "ttbar_2017")
    assert not caplog.records  # covered in both eras: nothing to warn about
    mixed = validate(_demo_with_fsr_on(["diboson", "dy_2017"]))  # a process and a dataset
    assert mixed["systematics"]["ps_fsr"]["datasets"] == ["ww", "dy_2017", "ww_2017"]


def test_a_systematic_on_a_process_in_one_era_only_is_warned_about(caplog):
    """A systematic that varies a process in one era and not in another: a logged warning
    naming the systematic, the process and the eras (and what would cover it)."""
    validate(_demo_with_fsr_on(["ttbar"]))
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    message = record.getMessage()
    assert "'systematics.ps_fsr.datasets'" in message
    assert "process 'top' in era 2018 and not in era 2017" in message
    assert "add ttbar_2017 (or the process 'top')" in message
    caplog.clear()
    # a name that is a dataset and the process of others too: ambiguous (issue 28 review)
    with pytest.raises(ConfigError, match=r"'dy' is a dataset and the process of dy, dy_m100"):
        validate(_demo_with_fsr_on(["dy"]))
    caplog.clear()
    from tests.helpers import flat_demo_config

    flat = flat_demo_config()  # one era: nothing to warn about
    flat["systematics"]["ps_fsr"]["datasets"] = ["ttbar"]
    validate(flat)
    assert not caplog.records


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["tbar"], r"'systematics\.ps_fsr\.datasets': 'tbar' is neither a dataset nor a process"),
        (["top", "data"], r"'systematics\.ps_fsr\.datasets': 'data' is data; systematic"),
        (["top", "data_2017"], r"'data_2017' is data; systematic variations apply to MC only"),
    ],
)
def test_a_systematic_naming_no_mc_dataset_or_process_is_refused(names, message):
    with pytest.raises(ConfigError, match=message):
        validate(_demo_with_fsr_on(names))


def test_a_fitted_region_whose_name_combine_refuses_is_named():
    """combine's datacard parser refuses a channel ("bin") whose name starts with a digit: a
    region of a shapes histogram named so is a config error, not a card combine rejects."""
    config = yaml.safe_load(DEMO_CONFIG.read_text().replace("ww_emu", "2emu"))
    fitted = config["shapes"]["histograms"][0]
    assert "2emu" in config["histograms"][fitted]["regions"]
    with pytest.raises(
        ConfigError,
        match=rf"'regions\.2emu': a channel of the datacard of "
        rf"shapes\.histograms '{fitted}'.*starts with a digit",
    ):
        validate(config)


def _two_hypotheses(c: dict) -> None:
    """A search with two hypotheses, datasets of dy's files (enough to validate)."""
    for name in ("zp1", "zp2"):
        c["datasets"][name] = {**c["datasets"]["dy"], "process": name, "xsec": 1.0}
    c["searches"] = {"z": {"histogram": "mll", "signals": {"zp1": 110, "zp2": 125}}}


def _apply(*steps):
    def mutate(c):
        for step in steps:
            step(c)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["shapes"].update(normfactors={"mu": ["dy"]}),
         r"'shapes\.normfactors\.mu': 'mu' is already a parameter of the fit"),
        (lambda c: c["shapes"].update(normfactors={"jes": ["dy"]}),
         r"'shapes\.normfactors\.jes': 'jes' is already a parameter"),
        (lambda c: c["shapes"].update(normfactors={"n": c["shapes"]["signal"]}),
         r"'shapes\.normfactors\.n': .* is a signal"),
        (lambda c: c["shapes"].update(normfactors={"a": ["dy"], "b": ["dy"]}),
         r"'shapes\.normfactors\.b': 'dy' is already scaled by 'a'"),
        (_apply(_two_hypotheses, lambda c: c["shapes"].update(normfactors={"n": ["zp1"]})),
         r"'shapes\.normfactors\.n': 'zp1' is a signal"),
        (_apply(_two_hypotheses,
                lambda c: c["searches"]["z"].update(signals={"zp1": 110, "zp2": 110})),
         r"'searches\.z\.signals': two hypotheses at mass 110"),
        (lambda c: c["datasets"]["dy"].update(process="total MC"), r"'total MC' is the tables'"),
    ],
)  # fmt: skip
def test_fit_parameters_and_hypotheses_that_would_mislead_are_refused(mutate, message, demo_set):
    """Regression (issue 28 review): a normfactor named mu made the signal strength a joint
    scale of two processes; one named like a nuisance, or on the signal, failed in the fit
    with a traceback; duplicate masses, a process named as the tables' total were accepted."""
    config = copy.deepcopy(demo_set["config"])
    mutate(config)
    with pytest.raises(ConfigError, match=message):
        validate(config)


def test_a_hypothesis_missing_in_an_era_is_refused():
    """Regression (issue 28 review): the demo's Z' of 125 GeV without its 2017 sample gave a
    limit for 16 pb^-1 with the 2017 channel empty of signal."""
    from brewflow.config import load_config

    config = load_config(DEMO_CONFIG)
    del config["datasets"]["zprime_m125_2017"]
    with pytest.raises(ConfigError, match=r"'searches\.zprime\.signals': 'zprime_m125' has no "
                       r"dataset in era 2017"):  # fmt: skip
        validate(config)


def test_a_name_that_is_a_dataset_and_a_larger_process_is_ambiguous():
    """Regression (issue 28 review): ``ps_fsr: datasets: [dy]`` took the dataset dy and left
    dy_m100, of the same process dy, out without a word."""
    from brewflow.config import load_config

    config = load_config(DEMO_CONFIG)
    config["systematics"]["ps_fsr"]["datasets"] = ["dy"]
    with pytest.raises(ConfigError, match=r"'dy' is a dataset and the process of dy, dy_m100"):
        validate(config)


def test_the_record_names_only_its_tables_and_needs_png():
    """Issue 32: ``hepdata.locations`` of a table the record does not have (a typo, a plot no
    longer made) and a record without the figures' PNGs are refused, naming the key."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    validate(copy.deepcopy(config))
    config["hepdata"]["locations"]["plots/ww_emu/mll_typo"] = "Figure 9"
    with pytest.raises(ConfigError, match=r"hepdata.locations: no table 'plots/ww_emu/mll_typo'"):
        validate(copy.deepcopy(config))
    del config["hepdata"]["locations"]["plots/ww_emu/mll_typo"]
    config["plots"]["formats"] = ["pdf"]
    with pytest.raises(ConfigError, match=r"add png to plots\.formats"):
        validate(copy.deepcopy(config))
    config.pop("hepdata")  # no record asked for: no PNG needed
    validate(copy.deepcopy(config))


def test_a_record_that_could_not_be_written_is_refused_before_the_run():
    """Review of issue 32: a table name longer than HEPData takes, two tables that would be one
    file, a location longer than the schema's: refused at validation (not in the last job);
    ``hepdata:`` alone means the defaults."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["hepdata"] = None
    assert validate(copy.deepcopy(config))["hepdata"]["locations"] == {}
    long = copy.deepcopy(config)
    long["histograms"]["a_very_long_histogram_name_of_the_dilepton_mass_spectrum"] = dict(
        long["histograms"]["mll"])  # fmt: skip
    with pytest.raises(ConfigError, match="longer than the 64 characters HEPData takes"):
        validate(long)
    long.pop("hepdata")  # no record asked for: the name is fine
    validate(long)
    twins = copy.deepcopy(config)
    twins["histograms"]["MLL"] = dict(twins["histograms"]["mll"])
    with pytest.raises(ConfigError, match=r"would be one file \(mll_in_zmumu\.yaml\)"):
        validate(twins)
    where = copy.deepcopy(config)
    where["hepdata"] = {"locations": {"plots/zmumu/mll": "x" * 257}}
    with pytest.raises(ConfigError, match="hepdata"):
        validate(where)
    where["hepdata"] = {"locations": {"plots/zmumu/mlll": "Figure 1"}}
    with pytest.raises(ConfigError, match="did you mean 'plots/zmumu/mll'"):
        validate(where)


def test_met_filters_are_listed_by_the_regions_and_set_for_every_era():
    """Issue 31: the cut 'met_filters' needs MET filters in every era, MET filters need a
    region to list the cut (else they would do nothing), a recommendation is one brewflow
    knows; theory.datasets names datasets or processes."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["regions"]["zmumu"]["cuts"].insert(0, "met_filters")
    config["eras"]["2018"]["met_filters"] = "run2_ul_2018"
    with pytest.raises(
        ConfigError,
        match=r"regions\.zmumu\.cuts': the cut 'met_filters' needs "
        r"MET filters for every era, and 2017 has none",
    ):
        validate(copy.deepcopy(config))
    config["met_filters"] = "run2_ul_2017"  # the default of the eras without their own
    validated = validate(copy.deepcopy(config))
    from brewflow.config import met_filters_of

    assert met_filters_of(validated, "data") == "run2_ul_2018"
    assert met_filters_of(validated, "data_2017") == "run2_ul_2017"
    config["met_filters"] = "run2_ul_2019"
    with pytest.raises(ConfigError, match="met_filters"):
        validate(copy.deepcopy(config))
    config["met_filters"] = ["goodVertices"]
    config["regions"]["zmumu"]["cuts"].remove("met_filters")
    with pytest.raises(ConfigError, match="no region lists the cut 'met_filters'"):
        validate(copy.deepcopy(config))
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["theory"]["datasets"] = ["ttbar", "dibosn"]
    with pytest.raises(ConfigError, match=r"theory\.datasets': no MC dataset or process 'dibosn'"):
        validate(copy.deepcopy(config))
    config["theory"]["datasets"] = ["ttbar", "data"]  # data never get theory weights
    with pytest.raises(ConfigError, match="no MC dataset or process 'data'"):
        validate(copy.deepcopy(config))
    config["theory"] = {"top_pt": {"datasets": ["tt"]}}
    with pytest.raises(
        ConfigError, match=r"theory\.top_pt\.datasets': no MC dataset or process 'tt'"
    ):
        validate(config)


@pytest.mark.parametrize("value", [1, -3, "soon"])
def test_a_bad_stall_timeout_says_what_the_key_takes(demo_set, value):
    """A key that takes one of several forms says what it takes, not "not valid under any of
    the given schemas"."""
    with pytest.raises(ConfigError, match=r"'stall_timeout': .* is not valid: seconds a forked"):
        validate({**demo_set["config"], "stall_timeout": value})


def test_a_choice_of_keys_missing_names_the_keys(demo_set):
    """A config with neither 'luminosity' nor 'eras', a dataset with neither 'files' nor
    'files_from': one short line naming the keys (was the whole config printed, then "is not
    valid under any of the given schemas"; found by the review)."""
    config = copy.deepcopy(demo_set["config"])
    config["datasets"]["dy"].pop("files")
    config["datasets"]["dy"].pop("files_from", None)
    with pytest.raises(ConfigError, match=r"'datasets\.dy': give 'files' or 'files_from'$"):
        validate(config)
    config = {k: v for k, v in demo_set["config"].items() if k not in ("eras", "luminosity")}
    config["datasets"] = {n: {k: v for k, v in d.items() if k != "era"}
                          for n, d in demo_set["config"]["datasets"].items()}  # fmt: skip
    with pytest.raises(ConfigError) as error:
        validate(config)
    assert "give 'luminosity' or 'eras'" in str(error.value)
    assert len(str(error.value)) < 200
