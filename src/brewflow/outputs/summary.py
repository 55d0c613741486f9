"""The run summary for the Snakemake report: the event ledger, the systematics, provenance.

Three small self-contained HTML pages (pandas tables), so ``snakemake --report`` shows them
beside the plots and cutflow tables.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from brewflow.config import applicable_systematics, nuisance_names
from brewflow.files import atomic_write
from brewflow.outputs import status
from brewflow.results import provenance
from brewflow.results.model import Result

__all__ = ["ledger_frame", "systematics_frame", "write_summary"]

_STYLE = (
    "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}pre{font-size:85%}</style>"
)


def ledger_frame(results_dir: str | Path, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per dataset (of ``datasets``, default the run's): state, files, chunks, events
    read, fraction read, skipped, and (remote files) the servers that served the chunks."""
    rows = []
    for e in status.collect(results_dir, datasets):
        files, chunks = e.get("files") or {}, e.get("chunks") or {}
        rows.append(
            {
                "dataset": e["dataset"],
                "state": e["state"],
                "files read": f"{files.get('read', '')}/{files.get('expected', '')}",
                "chunks read": chunks.get("read", ""),
                "chunks skipped": chunks.get("skipped", ""),
                "events read": f"{e['events']['read']}/{e['events']['expected']}",
                "fraction read": f"{100 * e['fraction']:.1f}%" if "fraction" in e else "",
                "skipped": "; ".join(f"{s['path']}: {s['reason']}" for s in e["skipped"]),
                "read from": _servers(e.get("replicas") or []),
            }
        )
    return pd.DataFrame(rows)


def _servers(reads: list[dict[str, Any]]) -> str:
    """Which servers served a dataset's remote chunks, and how many chunks failed over."""
    if not reads:
        return ""
    served = Counter(
        f"{parts.scheme}://{parts.netloc}" for parts in (urlsplit(r["replica"]) for r in reads)
    )
    text = "; ".join(f"{server}: {n} chunk(s)" for server, n in sorted(served.items()))
    failed = sum(1 for r in reads if r["failed"])
    return text + (f"; {failed} chunk(s) failed over from another replica" if failed else "")


def systematics_frame(config: Mapping[str, Any]) -> pd.DataFrame:
    """One row per systematic: type, source or factors, the datasets it applies to, and its
    nuisances (one per era where it is not correlated across eras)."""
    rows = []
    for name, spec in config["systematics"].items():
        detail = spec.get("source", "")
        if spec["type"] == "scale":
            detail = f"up x{spec['up']:g}, down x{spec['down']:g}"
        applies = [d for d in config["datasets"] if name in applicable_systematics(config, d)]
        nuisances = dict.fromkeys(nuisance_names(config, d)[name] for d in applies)
        rows.append(
            {
                "systematic": name,
                "nuisances": ", ".join(nuisances),
                "type": spec["type"],
                "detail": detail,
                "datasets": ", ".join(applies),
                "description": spec.get("description", ""),
            }
        )
    columns = ["systematic", "nuisances", "type", "detail", "datasets", "description"]
    return pd.DataFrame(rows, columns=columns)


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"{_STYLE}</head><body><h2>{html.escape(title)}</h2>{body}</body></html>\n"
    )


def write_summary(
    config: Mapping[str, Any],
    stacked: Sequence[Result],
    results_dir: str | Path,
    outdir: str | Path,
) -> list[Path]:
    """Write ``ledger.html``, ``systematics.html`` and ``provenance.html`` to ``outdir``."""
    outdir = Path(outdir)
    record = provenance.of(stacked)
    inputs = pd.DataFrame(
        [{"file": path, **info} for path, info in record["inputs"].items()],
        columns=["file", "size", "uuid"],
    )
    payloads = pd.DataFrame(list(record["payloads"].items()), columns=["file", "sha256"])
    versions = pd.DataFrame(list(record["packages"].items()), columns=["package", "version"])
    head = {k: record.get(k) for k in ("brewflow", "git", "analysis_git", "config")}
    pages = {
        "ledger.html": _page(
            "Event ledger: what was read and skipped",
            ledger_frame(results_dir, list(config["datasets"])).to_html(index=False),
        ),
        "systematics.html": _page(
            f"Systematics ({len(config['systematics'])})",
            systematics_frame(config).to_html(index=False),
        ),
        "provenance.html": _page(
            "Provenance",
            f"<pre>{html.escape(json.dumps(head, indent=1))}</pre><h3>Input files</h3>"
            + inputs.to_html(index=False)
            + "<h3>Payloads and models</h3>"
            + payloads.to_html(index=False)
            + "<h3>Packages</h3>"
            + versions.to_html(index=False),
        ),
    }
    paths = []
    for name, text in pages.items():
        atomic_write(outdir / name, text)
        paths.append(outdir / name)
    return paths
