"""The run's HEPData record (``brewflow hepdata``, the workflow's ``hepdata`` rule): a
``submission.yaml`` and one table per figure and table of the run
(:func:`brewflow.config.records.record_tables`), each built by :mod:`.hepdata_tables` of the
numbers its figure or table was made of (the plots' ``<histogram>.json``, the cutflow CSVs,
``fit.json``, ``limits.json``), with the figure's image and thumbnail; checked by
``hepdata-validator`` before it replaces the record; the upload archive beside it.

A record is byte-reproducible: the YAML holds no dates (hepdata_lib), the images are the
figures' own bytes, the thumbnails are drawn by Pillow without metadata and the archive's
members carry fixed times and owners. The provenance (brewflow's version and commit, the
analysis repository's commit, the config's hash) is in the record's description.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from brewflow.config import era_names, era_settings, hypotheses
from brewflow.config.blinding import Blinding
from brewflow.config.records import RecordTable, record_problems, record_sources, record_tables
from brewflow.errors import InputError
from brewflow.files import atomic_output
from brewflow.outputs import hepdata_gate as gate
from brewflow.outputs import hepdata_tables as tables
from brewflow.outputs.distribution import (
    read_distribution,
)
from brewflow.outputs.plots import process_styles
from brewflow.results import provenance

__all__ = ["THUMBNAIL", "build_submission", "validate_record", "write_record"]

log = logging.getLogger(__name__)

THUMBNAIL = (240, 240)
"""The largest size of a table's thumbnail, in pixels (HEPData shows them in its list)."""


def _unreadable(path: str, err: Exception) -> InputError:
    return InputError(f"HEPData record: cannot read {path!r} ({err}); rerun the workflow")


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise _unreadable(path, err) from None


def _energies(config: Mapping[str, Any], era: str | None) -> dict[float, float]:
    """Centre-of-mass energy (TeV) -> integrated luminosity (pb^-1) of ``era`` (None: all)."""
    out: dict[float, float] = {}
    for name in [era] if era is not None else era_names(config):
        settings = era_settings(config, name)
        out[settings["energy"]] = out.get(settings["energy"], 0.0) + settings["luminosity"]
    return out


def _qualifiers(config: Mapping[str, Any], era: str | None, region: str | None = None) -> list:
    """SQRT(S) and LUMINOSITY (each energy's, in fb^-1) of ``era`` (None: the combination),
    and the region's label."""
    energies = _energies(config, era)
    sqrt_s = [f"{1000 * e:g}" for e in energies]
    lumis = [f"{lumi / 1000:.4g}" for lumi in energies.values()]
    out: list[tuple[str, Any, str]] = [
        ("SQRT(S)", float(sqrt_s[0]) if len(sqrt_s) == 1 else " + ".join(sqrt_s), "GeV"),
        ("LUMINOSITY", float(lumis[0]) if len(lumis) == 1 else " + ".join(lumis), "fb$^{-1}$"),
    ]
    if era is not None:
        out.append(("Era", era_settings(config, era)["label"], ""))
    if region is not None:
        out.append(("Region", config["regions"][region].get("label") or region, ""))
    return out


def _keywords(config: Mapping[str, Any], era: str | None) -> dict[str, list]:
    block = config.get("hepdata") or {}
    return {
        "cmenergies": [1000.0 * e for e in _energies(config, era)],
        "reactions": list(block.get("reactions", [])),
        "observables": list(block.get("observables", [])),
        "phrases": list(block.get("phrases", [])),
    }


def _scope(era: str | None) -> str:
    return "all eras" if era is None else f"era {era}"


def _table(
    config: Mapping[str, Any], entry: RecordTable, sources: Mapping[str, str],
    labels: Mapping[str, str],
) -> Any:  # fmt: skip
    """The hepdata_lib table of ``entry``, made of its ``sources`` (``labels``: the processes'
    names in the figures)."""
    p = entry.params
    location = (config.get("hepdata") or {}).get("locations", {}).get(entry.key)
    common: dict[str, Any] = {"location": location or f"results/{entry.key}"}
    if entry.kind == "distribution":
        dist = gate.gated_distribution(config, entry, read_distribution(sources["numbers"]))
        region = config["regions"][p["region"]].get("label") or p["region"]
        notes = "; ".join(dist.notes[1:])
        description = (
            f"Distribution of {dist.xlabel} in region {region} ({_scope(p['era'])}): "
            + ("" if dist.data is None else "the data (Garwood 68.3% intervals), ")
            + "the prediction of each process (stacked in the figure), the total prediction "
            "with its statistical and systematic uncertainties (the band drawn is their sum in "
            "quadrature)" + (", the signal hypotheses (not stacked)" if dist.signals else "")
            + f" (y: {dist.ytitle})." + (f" {notes}." if notes else "")
        )  # fmt: skip
        return tables.distribution_table(
            dist, entry.name,
            description=description, keywords=_keywords(config, p["era"]),
            qualifiers=_qualifiers(config, p["era"], p["region"]), **common,
        )  # fmt: skip
    if entry.kind == "cutflow":
        tidy = gate.gated_cutflow(config, p["region"], _read_csv(sources["cutflow"]))
        blinding = Blinding.of(config)
        left = blinding.left_out(p["region"])
        shown = (f"; no data: blinded (a window, {left})" if left else
                 "; no data: blinded" if blinding.is_blind(p["region"]) else
                 ", the data events and data / total MC")  # fmt: skip
        description = (
            f"Cutflow of region {p['region']} ({_scope(p['era'])}): per selection step the "
            "yield of each process normalised to the luminosity with its statistical "
            "uncertainty, the total MC" + shown + "."
        )
        return tables.cutflow_table(
            tidy, entry.name, labels=labels,
            hypotheses=sorted(hypotheses(config)), description=description,
            keywords=_keywords(config, p["era"]),
            qualifiers=_qualifiers(config, p["era"], p["region"]), **common,
        )  # fmt: skip
    if entry.kind == "fit":
        fit = gate.gated_fit(config, entry.params["histogram"], _read_json(sources["fit"]))
        return _fit_table(config, entry, fit, labels, common)
    search = config["searches"][p["search"]]
    limits = gate.gated_limits(config, search["histogram"], _read_json(sources["limits"]))
    label = search.get("label") or p["search"]
    description = (
        f"Upper limits at {100 * (1 - limits['level']):g}% CL (CLs) on the cross section of "
        f"{label} against {search['mass_label']}: observed"
        + (" (blinded: none)" if limits["blinded"] else "")
        + ", expected median with its 68% and 95% bands, and the signal's cross section; "
        "the same limits on the signal strength."
    )  # fmt: skip
    return tables.limits_table(
        limits, entry.name, mass_label=search["mass_label"], signal=label,
        description=description, keywords=_keywords(config, None),
        qualifiers=_qualifiers(config, None), **common,
    )  # fmt: skip


def _read_csv(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise _unreadable(path, err) from None


def _fit_table(
    config: Mapping[str, Any], entry: RecordTable, fit: Mapping[str, Any],
    labels: Mapping[str, str], common: Mapping[str, Any],
) -> Any:  # fmt: skip
    histogram, which = entry.params["histogram"], entry.params["table"]
    data = "the Asimov dataset" if fit["data"] == "asimov" else "the data"
    if fit.get("blinded_channels"):
        data += f" (blinded channels: the Asimov dataset: {', '.join(fit['blinded_channels'])})"
    context = {"keywords": _keywords(config, None), "qualifiers": _qualifiers(config, None),
               **common}  # fmt: skip
    if which == "results":
        text = (f"Results of the maximum-likelihood fit of {histogram} to {data}: the signal "
                "strength, its intervals, the significances, the upper limits and the free "
                "normalisations.")  # fmt: skip
        return tables.fit_results_table(fit, entry.name, description=text,
                                        **context)  # fmt: skip
    if which in ("prefit", "postfit"):
        stage = "Pre-fit" if which == "prefit" else "Post-fit"
        text = (f"{stage} yields of the fit of {histogram} to {data} per channel, summed over "
                "its bins, with their uncertainties "
                + ("(the constraints)." if which == "prefit" else
                   "(the fit's covariance, correlations included).")
                )  # fmt: skip
        return tables.yields_table(fit, which, entry.name, labels=labels,
                                   description=text, **context)  # fmt: skip
    if which == "impacts":
        text = (f"Impacts on the signal strength in the fit of {histogram} to {data}: per "
                "nuisance, largest first, its pull and the change of the signal strength with "
                "it held at its best fit +- its post-fit and pre-fit uncertainty.")  # fmt: skip
        return tables.impacts_table(fit, entry.name, description=text, **context)
    text = (f"Pulls of the nuisance parameters in the fit of {histogram} to {data}, largest "
            "first, with their post-fit constraints.")  # fmt: skip
    return tables.pulls_table(fit, entry.name, description=text, **context)


def _comment(config: Mapping[str, Any]) -> str:
    """The record's description: the config's abstract and the provenance."""
    identity = provenance.record(config=config)
    made = (f"Made by brewflow {identity['brewflow']} (commit {identity['git'] or 'none'}) from "
            f"the config {identity['config'][0]}; analysis repository commit "
            f"{identity['analysis_git'] or 'none'}.")  # fmt: skip
    abstract = (config.get("hepdata") or {}).get("abstract", "").strip()
    return f"{abstract}\n\n{made}" if abstract else made


def build_submission(config: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """The record (a ``hepdata_lib.Submission``) and, per table file name, its figure's PNG."""
    from hepdata_lib import Submission

    submission = Submission()
    submission.comment = _comment(config)
    images: dict[str, str] = {}
    problems = record_problems(config)
    if problems:
        raise InputError(problems[0])
    labels = {name: style.get("label", name) for name, style in process_styles(config).items()}
    for entry in record_tables(config):
        sources = record_sources(config, entry)
        try:
            table = _table(config, entry, sources, labels)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            source = next(v for k, v in sources.items() if k != "image")
            raise InputError(
                f"HEPData record: {source!r} is not what brewflow writes there "
                f"({type(err).__name__}: {err}); rerun the job that made it"
            ) from None
        if "image" in sources:
            images[entry.stem] = sources["image"]
            table.add_additional_resource("Image file", f"{entry.stem}.png")
            table.add_additional_resource("Thumbnail image file", f"thumb_{entry.stem}.png")
        submission.add_table(table)
    return submission, images


def _thumbnail(image: str, output: Path) -> None:
    """``image`` scaled to fit :data:`THUMBNAIL` (Pillow, no metadata: same bytes each time)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as picture:
            small = picture.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(
            f"HEPData record: the figure {image!r} is not a readable PNG ({err}); "
            "rerun the job that made it"
        ) from None
    small.thumbnail(THUMBNAIL, Image.Resampling.LANCZOS)
    small.save(output, format="PNG", optimize=False)


def _write_files(submission: Any, images: Mapping[str, str], folder: Path) -> None:
    """The record's files in ``folder``: submission.yaml, one YAML per table, images."""
    head = {"data_license": submission.get_license(), "comment": submission.comment,
            "additional_resources": submission.additional_resources}  # fmt: skip
    (folder / "submission.yaml").write_text(yaml.dump(head, default_flow_style=False,
                                                      explicit_start=True))  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # hepdata_lib prints its warnings
        for table in submission.tables:
            table.write_yaml(str(folder))
    for stem, image in images.items():
        shutil.copyfile(image, folder / f"{stem}.png")
        _thumbnail(image, folder / f"thumb_{stem}.png")


def validate_record(record: str | Path) -> list[str]:
    """hepdata-validator's messages on the ``record``, a folder or an archive (none: valid),
    offline."""
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

    validator = FullSubmissionValidator(autoload_remote_schemas=False)
    with warnings.catch_warnings():  # it leaves the data files it reads open: closed here
        warnings.simplefilter("ignore", ResourceWarning)
        where = "directory" if Path(record).is_dir() else "archive"
        valid = validator.validate(**{where: str(record)})
        gc.collect()
    if valid:
        return []
    return [f"{Path(file).name}: {m.message}" for file, messages in
            validator.get_messages().items() for m in messages]  # fmt: skip


def _archive(folder: Path, output: Path) -> None:
    """``folder``'s files as a gzipped tar (the upload), each member with a fixed time, owner
    and mode, in name order; the gzip header without a date."""
    with (
        atomic_output(output) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(folder.iterdir()):
            info = tarfile.TarInfo(path.name)
            info.size, info.mtime, info.mode = path.stat().st_size, 0, 0o644
            with open(path, "rb") as handle:
                tar.addfile(info, handle)


@contextlib.contextmanager
def _staging(output_dir: Path) -> Iterator[Path]:
    """A fresh folder beside ``output_dir`` that replaces it when the body succeeds (the old
    record moved aside first, removed after). A folder that is neither empty nor a record is
    never replaced, nor the working folder or one holding it."""
    if output_dir.is_symlink() or (output_dir.exists() and not output_dir.is_dir()):
        raise InputError(f"{str(output_dir)!r} is a file or a link: give the record a folder")
    if output_dir.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise InputError(
            f"{str(output_dir)!r} holds the working folder: give the record a "
            "folder of its own (results/hepdata)"
        )
    if (
        output_dir.is_dir()
        and any(output_dir.iterdir())
        and not (output_dir / "submission.yaml").is_file()
    ):
        raise InputError(
            f"{str(output_dir)!r} is a folder with files but no HEPData record "
            "(submission.yaml): give an empty or new folder for the record"
        )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # as any folder the run makes (mkdtemp's is private)
    old = staging.with_name(staging.name + "-old")
    try:
        yield staging
        if output_dir.exists():
            os.replace(output_dir, old)
        os.replace(staging, output_dir)
    finally:
        for leftover in (staging, old):
            if leftover.exists():
                shutil.rmtree(leftover)


def write_record(
    config: Mapping[str, Any], output_dir: str | Path, archive: str | Path | None = None
) -> dict[str, Any]:
    """Write the run's HEPData record to ``output_dir`` (and the upload ``archive``), checked
    by hepdata-validator first: an invalid record is a bug, reported with the validator's
    messages, and replaces nothing. Returns the number of tables and the record's size."""
    output_dir = Path(output_dir)
    if archive is not None and not str(archive).endswith(".tar.gz"):
        raise InputError(f"the archive {str(archive)!r}: name it <something>.tar.gz (it is one)")
    if archive is not None and output_dir.resolve() in (
        Path(archive).resolve(),
        *Path(archive).resolve().parents,
    ):
        raise InputError(
            f"the archive {str(archive)!r} is inside the record's folder "
            f"{str(output_dir)!r}: give it a path beside it (results/hepdata.tar.gz)"
        )
    submission, images = build_submission(config)
    with _staging(output_dir) as folder:
        _write_files(submission, images, folder)
        problems = validate_record(folder)
        if problems:
            raise InputError("HEPData record: hepdata-validator refused it: "
                             + "; ".join(problems[:5]))  # fmt: skip
        if archive is not None:
            _archive(folder, Path(archive))
    size = sum(p.stat().st_size for p in output_dir.iterdir())
    log.info(
        "HEPData record: %d tables, %d files, %.1f kB in %s (valid)",
        len(submission.tables),
        len(list(output_dir.iterdir())),
        size / 1e3,
        output_dir,
    )
    return {"tables": len(submission.tables), "bytes": size}
