"""The config model: datasets, their files and processes, and the payloads they read."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from brewflow.config.blinding import Blinding
from brewflow.errors import ConfigError
from brewflow.files import expand_glob
from brewflow.locations import (
    SCHEMES,
    file_identity,
    is_glob,
    is_lfn,
    is_url,
    is_xrootd,
    redirector_problem,
    replicas,
    url_problem,
)


def dataset_spec(config: Mapping, dataset: str) -> Mapping:
    """The config of ``dataset``; an unknown name is a :class:`ConfigError` listing the known."""
    if dataset not in config["datasets"]:
        known = ", ".join(config["datasets"])
        raise ConfigError(f"unknown dataset {dataset!r}; config has: {known}")
    return config["datasets"][dataset]


def is_generated(dataset: Mapping) -> bool:
    """True for demo datasets whose files ``brewflow generate`` writes."""
    return "generator" in dataset


def process_of(config: Mapping, dataset: str) -> str:
    """The stacking group of a dataset (its ``process``, else its name)."""
    return config["datasets"][dataset].get("process", dataset)


CERTIFIED_AS_A_WHOLE = "all"
"""``lumi_mask: all``: data whose every lumi block is certified (already filtered by a golden
JSON, e.g. a skim), said explicitly: data without a golden JSON are refused."""


def golden_json(config: Mapping, dataset: str) -> str | None:
    """The golden JSON file that certifies ``dataset``'s lumi blocks (None for MC and for
    data certified as a whole, ``lumi_mask: all``): the one place every path asks."""
    mask = config["datasets"][dataset].get("lumi_mask")
    return None if mask in (None, CERTIFIED_AS_A_WHOLE) else str(mask)


def payload_files(config: Mapping, dataset: str) -> list[str]:
    """Files besides its data that a dataset's analysis reads: golden JSON (data with
    ``lumi_mask``), its era's correction payloads, its blocks' payloads (JERC, jet veto map,
    jet ID, MET xy, electron and muon scale, lepton SFs), the models; each once, in config
    order. The workflow's analyze rules take them as inputs: an edited payload reruns them."""
    mask = golden_json(config, dataset)
    settings = era_settings(config, era_of(config, dataset))
    files = [spec["file"] for spec in settings["corrections"].values()]
    jets = settings.get("jets") or {}
    if jets:
        files.append(jets["file"])
        files += [jets[key]["file"] for key in ("veto_map", "met_xy")
                  if isinstance(jets.get(key), Mapping)]  # fmt: skip
        if isinstance(jets.get("id"), Mapping):
            files.append(jets["id"]["file"])
    electrons = (settings.get("electrons") or {}).get("scale_smearing")
    if isinstance(electrons, Mapping):
        files.append(electrons["file"])
    files += [spec["file"] for spec in (settings.get("muons") or {}).values()]
    files += [spec["file"] for spec in (settings.get("lepton_sf") or {}).values()]
    files += config.get("models", {}).values()
    return list(dict.fromkeys([*([mask] if mask else []), *files]))


def dataset_files(config: Mapping, dataset: str) -> list[str]:
    """The dataset's files as listed (``files``, then ``files_from``'s lines): local globs
    expanded (sorted; a glob's matches that are folders are left out), URLs and logical names
    kept (a glob on an XRootD folder is expanded by preprocessing, which contacts the server).
    Checks that each local file exists, each URL is well formed, each logical name has
    redirectors, and that no file is listed twice under any name (``x.root``, ``./x.root``, a
    symlink, a hard link: :func:`~brewflow.locations.file_identity`)."""
    spec = config["datasets"][dataset]
    out: list[str] = []
    key = f"config key 'datasets.{dataset}.files'"
    redirectors = spec.get("redirectors", [])
    for where, value in (("redirectors", r) for r in redirectors):
        if (problem := redirector_problem(value)) is not None:
            raise ConfigError(f"config key 'datasets.{dataset}.{where}': {value!r}: {problem}")
    for pattern in spec["files"]:
        if (scheme := pattern.split(":", 1)[0]).lower() in SCHEMES and not is_url(pattern):
            raise ConfigError(f"{key}: {pattern!r}: malformed URL (write {scheme}://host/...)")
        if is_url(pattern):
            if (problem := url_problem(pattern)) is not None:
                raise ConfigError(f"{key}: {pattern!r}: {problem}")
            if is_glob(pattern) and not is_xrootd(pattern):
                raise ConfigError(
                    f"{key}: {pattern!r}: a glob works on local and XRootD (root://) folders "
                    "only; an HTTP server cannot be listed: list the files"
                )
            out.append(pattern)
        elif redirectors:
            if not pattern.startswith("/"):
                raise ConfigError(
                    f"{key}: {pattern!r}: with 'redirectors', entries are logical file names "
                    "(/store/...) or URLs"
                )
            if glob.has_magic(pattern):
                raise ConfigError(
                    f"{key}: {pattern!r}: a logical file name cannot be a glob (redirectors do "
                    "not list folders); list the files, e.g. from dasgoclient, in 'files_from'"
                )
            out.append(pattern)
        elif glob.has_magic(pattern):
            files = expand_glob(pattern)
            if not files:
                folders = sorted(glob.glob(pattern, recursive=True))[:3]
                what = f"only folders ({', '.join(folders)})" if folders else "no file"
                raise ConfigError(f"{key}: the glob {pattern!r} matches {what}")
            out.extend(files)
        elif is_generated(spec) or Path(pattern).is_file():
            out.append(pattern)
        elif Path(pattern).is_dir():
            raise ConfigError(
                f"{key}: {pattern!r} is a folder; list its files or use a glob "
                f"({pattern.rstrip('/')}/*.root)"
            )
        elif is_lfn(pattern):
            raise ConfigError(
                f"{key}: {pattern!r} is not a local file and looks like a logical file name: "
                f"give the dataset 'redirectors' (e.g. [root://cmsxrootd.fnal.gov/]) to read "
                "it remotely"
            )
        else:
            raise ConfigError(f"{key}: file {pattern!r} does not exist")
    seen: dict[tuple, int] = {}
    for i, name in enumerate(out):
        first = seen.setdefault(file_identity(name, bool(redirectors)), i)
        if first != i:
            other = out[first]
            same = "listed twice" if other == name else f"and {name!r} are the same file"
            raise ConfigError(
                f"{key}: {other!r} {same}; its events would be counted twice (list it once)"
            )
    return out


def local_files(config: Mapping, dataset: str) -> list[str]:
    """The dataset's local files (globs expanded): what Snakemake watches. Remote files are
    not Snakemake inputs; their existence and identity are checked by preprocessing."""
    if config["datasets"][dataset].get("redirectors"):
        return []  # every entry is a logical name or a URL
    return [f for f in dataset_files(config, dataset) if not is_url(f)]


def dataset_replicas(config: Mapping, dataset: str, entry: str) -> list[str]:
    """The URLs (or the local path) to try, in order, for one of the dataset's files."""
    return replicas(entry, config["datasets"][dataset].get("redirectors", ()))


def expand_files_from(config: dict, base: Path | None = None) -> dict:
    """Append to each dataset's ``files`` the lines of its ``files_from`` (one path, URL or
    logical name a line; blank lines and ``#`` comments ignored), in place; returns ``config``.
    A relative ``files_from`` is relative to ``base`` (the folder of the config file that gives
    it) and made absolute."""
    for name, spec in (config.get("datasets") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("files_from"), str):
            continue
        listing = Path(spec["files_from"])
        if base is not None and not listing.is_absolute():
            listing = base / listing
        key = f"config key 'datasets.{name}.files_from'"
        try:
            text = listing.read_text()
        except (OSError, UnicodeDecodeError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise ConfigError(f"{key}: cannot read {str(listing)!r} ({reason})") from None
        lines = [line.strip() for line in text.splitlines()]
        entries = [line for line in lines if line and not line.startswith("#")]
        if not entries:
            raise ConfigError(f"{key}: {str(listing)!r} lists no file")
        spec["files_from"] = str(listing.resolve())
        spec["files"] = [*(spec.get("files") or []), *entries]
    return config


def check_files_once(config: Mapping) -> None:
    """Every dataset's files exist (:func:`dataset_files`) and no file is in two datasets (it
    would be counted twice in a process, or in data and MC)."""
    owner: dict[tuple, tuple[str, str]] = {}
    for name, dataset in config["datasets"].items():
        if is_generated(dataset):
            continue
        for path in dataset_files(config, name):
            by_name = bool(dataset.get("redirectors"))
            first = owner.setdefault(file_identity(path, by_name), (name, path))
            if first[0] != name:
                raise ConfigError(
                    f"config key 'datasets.{name}.files': {path!r} is also in dataset "
                    f"{first[0]!r} (as {first[1]!r}); a file belongs to one dataset, or its "
                    "events are counted twice"
                )


def processes(config: Mapping) -> dict[str, list[str]]:
    """Process -> its datasets, in config order."""
    out: dict[str, list[str]] = {}
    for dataset in config["datasets"]:
        out.setdefault(process_of(config, dataset), []).append(dataset)
    return out


def on_bad_file(config: Mapping, dataset: str) -> str:
    """``fail`` or ``skip``: the dataset's ``on_bad_file``, else the config's."""
    return config["datasets"][dataset].get("on_bad_file", config["on_bad_file"])


def skim_targets(config: Mapping) -> list[tuple[str, str]]:
    """``(skim, dataset)`` pairs the config asks for."""
    return [
        (name, dataset)
        for name, spec in config.get("skims", {}).items()
        for dataset in spec.get("datasets") or config["datasets"]
    ]


def eras(config: Mapping) -> list[str]:
    """The configured eras, in config order (``[]``: one implicit era, the top-level keys)."""
    return list(config.get("eras") or {})


def era_names(config: Mapping) -> list[str | None]:
    """The eras to go through: the configured ones, or ``[None]`` (the implicit one)."""
    names: list[str | None] = [*eras(config)]
    return names or [None]


def era_of(config: Mapping, dataset: str) -> str | None:
    """The era of ``dataset`` (None without ``eras``)."""
    return config["datasets"][dataset].get("era")


def era_datasets(config: Mapping, era: str | None) -> list[str]:
    """The datasets of ``era`` (every dataset for None), in config order."""
    return [d for d in config["datasets"] if era is None or era_of(config, d) == era]


BLOCKS = ("jets", "electrons", "muons", "lepton_sf", "met_filters", "hem_veto", "l1_prefiring")
"""The era settings that are the era's own, else the top-level one (absent without either)."""


class EraSettings(Mapping):
    """What an era sets, each key computed when read (a job reads only the keys it uses):
    ``luminosity`` (pb^-1), ``energy`` (TeV), ``label``, ``corrections`` (the top-level ones
    updated with the era's), the :data:`BLOCKS` (``jets``, ``met_filters``, ...: the era's,
    else the top-level; absent without either) and ``lumi_mask`` (or None). Era None: the
    top-level keys."""

    KEYS = ("luminosity", "energy", "label", "corrections", "lumi_mask", *BLOCKS)

    def __init__(self, config: Mapping, era: str | None) -> None:
        self._config, self._era = config, era

    def _spec(self) -> Mapping:
        return self._config["eras"][self._era] if self._era is not None else self._config

    def __getitem__(self, key: str) -> Any:
        spec, config, era = self._spec(), self._config, self._era
        if key == "luminosity":
            return spec["luminosity"]
        if key == "energy":
            return spec.get("energy", 13)
        if key == "label":
            return spec.get("label", era or "")
        if key == "corrections":
            own = spec.get("corrections", {}) if era is not None else {}
            return {**config.get("corrections", {}), **own}
        if key == "lumi_mask":
            return spec.get("lumi_mask") if era is not None else None
        if key in BLOCKS:  # the era's, else the top-level one
            own = spec.get(key) if era is not None else None
            found = own if own is not None else config.get(key)
            if found is None:
                raise KeyError(key)
            return found
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k in self.KEYS if k not in BLOCKS or k in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True


def era_settings(config: Mapping, era: str | None) -> EraSettings:
    """What ``era`` sets (:class:`EraSettings`; era None: the top-level keys)."""
    return EraSettings(config, era)


def for_dataset(config: Mapping, dataset: str) -> dict:
    """``config`` as the jobs of ``dataset`` see it: ``luminosity``, ``energy``,
    ``corrections`` and ``jets`` those of the dataset's era (a shallow copy; without
    ``eras``, the config itself)."""
    era = era_of(config, dataset)
    if era is None:
        return dict(config)
    settings = era_settings(config, era)
    out = {**config, **{k: settings[k] for k in ("luminosity", "energy", "corrections")}}
    out.pop("jets", None)
    if "jets" in settings:
        out["jets"] = settings["jets"]
    return out


def analysis_options(config: Mapping, dataset: str) -> dict:
    """The analysis options of ``dataset``: ``analysis.options`` updated with its era's."""
    era = era_of(config, dataset)
    extra = config["eras"][era].get("options", {}) if era is not None else {}
    return {**config["analysis"].get("options", {}), **extra}


def blinded_regions(config: Mapping) -> list[str]:
    """Regions whose data is blinded (``blind: true``), in config order."""
    blinding = Blinding.of(config)
    return [name for name in config["regions"] if blinding.is_blind(name)]


def blind_windows(config: Mapping, region: str) -> dict[str, tuple[float, float]]:
    """Histogram -> its ``blind`` window ``(low, high)`` for the histograms filled in
    ``region`` that have one (:class:`~brewflow.config.blinding.Blinding`)."""
    return {w.histogram: (w.low, w.high) for w in Blinding.of(config).windows.get(region, ())}


def demo_payloads(config: Mapping) -> dict[str | None, str]:
    """Era (None: the only one) -> the demo correction payload ``brewflow generate`` writes
    for it (config ``generate.corrections``: a path, or era -> path)."""
    corrections = config.get("generate", {}).get("corrections")
    if corrections is None:
        return {}
    return dict(corrections) if isinstance(corrections, dict) else {None: corrections}


def generated_payloads(config: Mapping) -> set[str]:
    """Payloads ``brewflow generate`` writes (correction payloads, BDT, golden JSONs of the
    generated data): checked once written, not when the config is read."""
    paths = {*demo_payloads(config).values(), config.get("generate", {}).get("bdt")}
    paths |= {golden_json(config, n) for n, d in config["datasets"].items()
              if is_generated(d)}  # fmt: skip
    return {p for p in paths if p is not None}


def fit_channels(config: Mapping, histogram: str) -> list[tuple[str, str, str | None]]:
    """``(channel, region, era)`` of a histogram's fit: one channel per region it is filled in
    x era, named ``<region>_<era>`` (``<region>`` without ``eras``)."""
    regions = config["histograms"][histogram].get("regions") or list(config["regions"])
    return [
        (region if era is None else f"{region}_{era}", region, era)
        for era in era_names(config)
        for region in regions
    ]


def hypotheses(config: Mapping) -> set[str]:
    """The processes that are a search's signal hypotheses (``searches.<name>.signals``): drawn
    apart, never stacked nor counted in totals, in no fit but their own."""
    return {p for search in config.get("searches", {}).values() for p in search["signals"]}


def channel_blinding(
    config: Mapping, histogram: str, region: str, era: str | None
) -> tuple[bool, tuple[float, float] | None]:
    """``(asimov, window)`` of a fit channel (:meth:`Blinding.channel`; the era has data when
    one of its datasets is data)."""
    has_data = any(config["datasets"][d]["is_data"] for d in era_datasets(config, era))
    asimov, window = Blinding.of(config).channel(histogram, region, has_data)
    return asimov, None if window is None else (window.low, window.high)
