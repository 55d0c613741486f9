"""The Snakemake report (``snakemake --report``).

Its front page and captions as Snakemake renders them (Jinja, then docutils): no docutils
warning, the luminosity of each era and their total. Then the report of the session's eras run
opened in a real headless Chromium (:mod:`tests.browser`) and walked through as a reader does,
with the report's own links and buttons: every page, category, subcategory and result; each
figure decoded at its file's size, each HTML page shown with its file's table cells, each table
offered with its file's bytes and shown in its description; no JavaScript error, no request
leaving the machine.
"""

from __future__ import annotations

import base64
import html
import html.parser
import json
import os
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from docutils.core import publish_parts
from docutils.writers import html4css1
from jinja2 import Environment

from brewflow.config import load_config, validate
from tests.browser import Chromium, Page, find_chromium
from tests.helpers import DEMO_CONFIG, ERAS, ROOT, era_config, flat_demo_config, snakemake

CAPTIONS = ROOT / "workflow" / "report"
RULES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
MARK = "<!-- brewflow-provenance"  # where the Markdown tables' provenance comment starts
PB = "pb−1"  # pb<sup>−1</sup> as text (a minus sign: the line does not break inside)


def stated_luminosity(eras: dict[str, float] | None, luminosity: float | None = None) -> str:
    """What the front page says of the luminosity: each era's and the total, or the one."""
    if not eras:
        return f"at {luminosity} {PB}"
    each = ", ".join(f"{era}: {lumi} {PB}" for era, lumi in eras.items())
    return f"in {len(eras)} eras, {each} ({sum(eras.values())} {PB})"


# -- the captions as Snakemake renders them (snakemake/report/__init__.py: a Jinja environment
# with trim_blocks and lstrip_blocks, then docutils' HTML writer) -----------------------------


class Files(list):
    """A list whose named items are also attributes (as Snakemake's output and wildcards)."""

    def __init__(self, *items: str, **named: str) -> None:
        super().__init__([*items, *named.values()])
        self.__dict__.update(named)


def render(caption: Path, snakemake: object) -> str:
    """``caption`` rendered to an HTML body as Snakemake renders report captions; a docutils
    warning or error raises (``halt_level``) instead of showing as a "System Message"."""
    template = Environment(trim_blocks=True, lstrip_blocks=True).from_string(caption.read_text())
    settings = {"halt_level": 2, "warning_stream": False}
    text = template.render(snakemake=snakemake)
    writer = html4css1.Writer()  # Snakemake's writer_name="html"
    return publish_parts(text, writer=writer, settings_overrides=settings)["html_body"]


def visible(markup: str) -> str:
    """The text of HTML ``markup``, whitespace collapsed (``pb<sup>−1</sup>`` -> ``pb−1``)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", markup)).split())


FRONT_PAGES = {  # a config and what its front page must say of the luminosity
    "demo": (lambda: load_config(str(DEMO_CONFIG)), stated_luminosity({"2017": 6.0, "2018": 10.0})),
    "eras": (lambda: validate(era_config()), stated_luminosity(ERAS)),
    "flat": (lambda: validate(flat_demo_config()), stated_luminosity(None, 10.0)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FRONT_PAGES))
def test_front_page_states_the_luminosity(name):
    """Issue 28: with eras the front page said "at pb^-1" (no top-level luminosity) and
    docutils warned "Definition list ends without a blank line"."""
    make, luminosity = FRONT_PAGES[name]
    config = make()
    text = visible(render(CAPTIONS / "workflow.rst", SimpleNamespace(config=config)))
    datasets, systematics = len(config["datasets"]), len(config["systematics"])
    assert text.startswith(
        f"brewflow analysis of {datasets} datasets {luminosity}, with {systematics} "
        "systematics (each with up and down variations)."
    ), text
    assert ("Fit holds" in text) == bool(config.get("fit"))
    assert ("Search holds" in text) == bool(config.get("searches"))


def _jobs(table: Path) -> dict[str, SimpleNamespace]:
    """A job for each caption as its rule passes it (wildcards, outputs); ``table`` is the
    Markdown table of the cutflow and of the fit."""
    config = validate(era_config())

    def job(wildcards: Files | None = None, output: Files | None = None) -> SimpleNamespace:
        return SimpleNamespace(config=config, wildcards=wildcards or Files(),
                               output=output or Files())  # fmt: skip

    return {
        "cutflow.rst": job(Files(region="zmumu"), Files(csv="zmumu.csv", md=str(table))),
        "plot.rst": job(Files(region="zmumu", histogram="mll")),
        "plot_era.rst": job(),
        "fit.rst": job(output=Files("fit.json", str(table), "fit.tex", "pulls.png")),
        "search.rst": job(output=Files("limits.json", str(table), "limits.png", "m1.pyhf.json")),
        "ledger.rst": job(),
        "systematics.rst": job(),
        "provenance.rst": job(),
    }


def test_every_caption_renders_without_warnings(tmp_path):
    """Each caption the rules name exists and renders cleanly (none unused); the cutflow and
    fit captions show the Markdown table without its provenance comment."""
    named = {m for rules in RULES
             for m in re.findall(r'caption="\.\./report/([\w.]+)"', rules.read_text())}  # fmt: skip
    table = tmp_path / "zmumu.md"
    table.write_text(f"# Cutflow, region zmumu\n\n| cut | dy |\n|:--|--:|\n| initial | 12 |\n\n"
                     f'{MARK}: {{"brewflow": "0"}} -->\n')  # fmt: skip
    jobs = _jobs(table)
    assert named == set(jobs)
    assert {p.name for p in CAPTIONS.glob("*.rst")} == {*jobs, "workflow.rst"}
    for name, job in jobs.items():
        text = visible(render(CAPTIONS / name, job))
        if name in ("cutflow.rst", "fit.rst", "search.rst"):
            assert "# Cutflow, region zmumu | cut | dy | |:--|--:| | initial | 12 |" in text, name
            assert "brewflow-provenance" not in text, name
    plot = jobs["plot.rst"]
    assert "Region zmumu, histogram mll." in visible(render(CAPTIONS / "plot.rst", plot))
    assert "mll_systematics.pdf" not in visible(render(CAPTIONS / "plot.rst", plot))
    plot.config = {**plot.config, "plots": {**plot.config["plots"], "systematics": True}}
    assert "mll_systematics.pdf: one page" in visible(render(CAPTIONS / "plot.rst", plot))


# -- the report of the eras run, in a browser ------------------------------------------------

# Helpers the walk installs in the report's page. The report (Snakemake's html_reporter) is a
# React app in one file: a navigation bar (menu items `ul > li > a`, breadcrumbs `ol`, a
# category's results as a table whose rows end in a view and an information button) and a
# content area (an <img>, or an <iframe> for HTML and PDF); `app` is its global state.
WALK_JS = """
window.walk = {
  links: () => [...document.querySelectorAll("nav ul > li > a")],
  labels: () => walk.links().map(a => a.innerText.trim()),
  click(label) {
    const link = walk.links().find(a => a.innerText.trim() === label);
    if (link) link.click();
    return !!link;
  },
  rows: () => [...document.querySelectorAll("nav table tbody tr")],
  button: (row, which) => walk.rows()[row].querySelectorAll("td:last-child a")[which],
  image() {
    const img = [...document.querySelectorAll("#app img")].find(i => !i.closest("nav"));
    if (!img || img.src !== app.state.contentPath || !img.complete) return null;
    return {width: img.naturalWidth, height: img.naturalHeight, shown: img.width};
  },
  caption() {
    const item = document.querySelector("nav li.prose");
    return item ? {text: item.innerText, html: item.innerHTML} : {text: "", html: ""};
  },
  front() {
    const description = document.querySelector("#app .prose");
    return description && {text: description.innerText, html: description.innerHTML};
  },
  graphs: () => document.querySelectorAll("#app .vega-embed canvas, #app .vega-embed svg").length,
};
"""
FRAME_JS = """({text: document.body.innerText,
  cells: [...document.querySelectorAll("td, th")].map(c => c.textContent.trim())})"""
VIEWED = ("image/", "text/html", "application/pdf")  # shown in the page; others: downloads


@dataclass
class Shown:
    """What the report showed for one result: where it is listed, what its view button showed
    (``view``: an image's size, a page's text and cells, or a download link) and the
    description in its information panel."""

    path: str
    category: str
    subcategory: str
    mime: str
    caption: dict
    view: dict = field(default_factory=dict)


@dataclass
class Walk:
    """Everything the browser showed, page by page."""

    front: dict = field(default_factory=dict)
    pages: dict[str, object] = field(default_factory=dict)  # Workflow, Statistics, About
    rows: dict[tuple[str, str], int] = field(default_factory=dict)  # per (sub)category
    shown: dict[str, Shown] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


class Reader:
    """Walks a report loaded in ``page``, a screenshot of each view into ``shots``."""

    def __init__(self, page: Page, shots: Path) -> None:
        self.page, self.shots, self.walk = page, shots, Walk()
        page.evaluate(WALK_JS)

    def js(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def until(self, expression: str, what: str) -> Any:
        return self.page.wait_for(expression, what)

    def shot(self, name: str) -> None:
        slug = re.sub(r"[^\w.-]+", "_", name)
        self.walk.screenshots.append(
            self.page.screenshot(self.shots / f"{len(self.walk.screenshots):02d}-{slug}.png")
        )

    def set_view(self, **view: object) -> None:
        self.js(f"app.setView({json.dumps(view)})")

    def click(self, label: str) -> None:
        assert self.js(f"walk.click({json.dumps(label)})"), (
            f"no link {label!r} in the navigation: {self.js('walk.labels()')}"
        )

    def read(self) -> Walk:
        """The front page (description and rule graph), Statistics, About, then each category
        of the menu, each of its subcategories and each result."""
        self.walk.front = self.until("walk.graphs() > 0 && walk.front()", "the front page")
        self.walk.pages["Workflow"] = self.js("walk.graphs()")
        self.shot("front")
        self.click("Statistics")
        self.walk.pages["Statistics"] = self.until("walk.graphs()", "the statistics' plots")
        self.shot("statistics")
        self.click("About")
        self.walk.pages["About"] = self.until("document.querySelector('nav').innerText", "About")
        self.set_view(navbarMode="menu")
        labels = self.until("walk.labels().length > 3 && walk.labels()", "the menu")
        for category in labels[labels.index("About") + 1 :]:
            self.set_view(navbarMode="menu")
            self.click(category)
            mode = self.until("app.state.navbarMode !== 'menu' && app.state.navbarMode", category)
            self.shot(category)
            if mode == "subcategory":  # a single subcategory: its results at once
                self.results(category, self.js("app.state.subcategory"))
                continue
            for subcategory in self.js("walk.labels()"):
                self.set_view(navbarMode="category", category=category)
                self.click(subcategory)
                self.until("app.state.navbarMode === 'subcategory'", subcategory)
                self.results(category, subcategory)
        self.walk.problems = self.page.problems()
        return self.walk

    def results(self, category: str, subcategory: str) -> None:
        """Each row of the results table: its information panel, then its view."""
        rows = self.js("walk.rows().length")
        self.walk.rows[category, subcategory] = rows
        for row in range(rows):
            self.set_view(navbarMode="subcategory", category=category, subcategory=subcategory)
            self.until(f"walk.rows().length === {rows}", f"the results of {subcategory}")
            self.js(f"walk.button({row}, 1).click()")
            path = self.until("app.state.navbarMode === 'resultinfo' && app.state.resultPath",
                              "the information panel")  # fmt: skip
            mime = self.js(f"results[{json.dumps(path)}].mime_type")
            shown = Shown(path, category, subcategory, mime, self.js("walk.caption()"))
            if row == 0:
                self.shot(f"info-{path}")
            self.set_view(navbarMode="subcategory", category=category, subcategory=subcategory)
            self.until(f"walk.rows().length === {rows}", f"the results of {subcategory}")
            shown.view = self.view(row, mime)
            assert path not in self.walk.shown, f"{path} listed twice"
            self.walk.shown[path] = shown

    def view(self, row: int, mime: str) -> dict:
        """Press row ``row``'s view button: what the content area then shows."""
        if not mime.startswith(VIEWED):  # a download link: not followed
            return self.js(f"(a => ({{href: a.href, download: a.getAttribute('download')}}))"
                           f"(walk.button({row}, 0))")  # fmt: skip
        self.js(f"walk.button({row}, 0).click()")
        self.until("results[app.state.resultPath].data_uri === app.state.contentPath", "view")
        path, uri = self.js("[app.state.resultPath, app.state.contentPath]")
        if mime.startswith("image/"):
            shown = self.until("walk.image()", f"the image {path}")
        elif mime == "application/pdf":
            shown = {"frame": self.frame(uri)}
        else:
            shown = self.page.evaluate(FRAME_JS, context=self.frame(uri))
        self.shot(path)
        return shown

    def frame(self, url: str, timeout: float = 30.0) -> int:
        """A JavaScript context of the loaded frame showing ``url``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = next((f for f in self.page.frames() if f["url"] == url), None)
            if frame is not None:
                context = self.page.frame_context(frame["id"])
                if self.page.evaluate("document.readyState", context=context) == "complete":
                    return context
            time.sleep(0.1)
        raise AssertionError(f"no loaded frame showing {url[:60]}... within {timeout:g} s")


@pytest.fixture(scope="session")  # session: looked for before the workflow runs
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "no Chromium installed (.ci/chromium.sh install: Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI checks the report in a real browser")
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def report(eras_run, tmp_path_factory) -> dict:
    """``snakemake --report`` of the session's eras run: the file and Snakemake's log."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    done = snakemake(eras_run["workdir"], "--report", str(path))
    assert done.returncode == 0, done.stderr[-4000:]
    return {"path": path, "log": done.stderr}


@pytest.fixture(scope="module")
def walk(chromium, report, tmp_path_factory) -> Walk:
    """The report read through in one headless Chromium (screenshots in the tmp folder)."""
    folder = tmp_path_factory.mktemp("browser")
    (folder / "screenshots").mkdir()
    with Chromium(chromium, folder, size=(1400, 1200)) as browser:
        return Reader(browser.open(report["path"].as_uri()), folder / "screenshots").read()


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


REPORTED = {  # the run's files the rules mark for the report, by category
    "Plots": ("results/plots/*/*.png", "results/eras/*/plots/*/*.png"),  # all eras, each era
    "Cutflow": ("results/cutflow/*.csv", "results/eras/*/cutflow/*.csv"),
    "Fit": ("results/fit/*/fit.*", "results/fit/*/*.png", "results/fit/*/*/*.png"),
    "Search": ("results/search/*/limits.*", "results/search/*/*.pyhf.json"),
    "Summary": ("results/summary/*.html",),
}
TABLES = {  # the Markdown table a result's description shows, by category
    "Cutflow": lambda path: path.with_suffix(".md"),
    "Fit": lambda path: Path(*path.parts[:3], "fit.md"),
    "Search": lambda path: Path(*path.parts[:3], "limits.md"),
}


def _reported(workdir: Path) -> dict[str, set[str]]:
    """The files of each category of the report, from the run's folder."""
    found = {category: {str(p.relative_to(workdir)) for pattern in patterns
                        for p in workdir.glob(pattern)}
             for category, patterns in REPORTED.items()}  # fmt: skip
    return {category: files for category, files in found.items() if files}


@pytest.mark.slow
def test_report_is_built_without_warnings(report):
    assert not re.findall(r".*\((?:INFO|WARNING|ERROR|SEVERE)/\d\).*", report["log"])
    assert "Report created." in report["log"]


@pytest.mark.slow
def test_front_page_in_the_browser(walk, eras_run):
    """The front page states each era's luminosity and the total, shows no "System
    Message", and draws the rule graph; Statistics draws its plots, About lists packages."""
    datasets = len(eras_run["config"]["datasets"])
    text = " ".join(walk.front["text"].split())
    assert f"brewflow analysis of {datasets} datasets {stated_luminosity(ERAS)}, with" in text
    assert "System Message" not in text
    assert "system-message" not in walk.front["html"]
    assert walk.pages["Workflow"] > 0
    assert walk.pages["Statistics"] > 0
    assert "snakemake" in str(walk.pages["About"])


@pytest.mark.slow
def test_every_result_of_the_run_is_shown(walk, eras_run):
    """Each file the rules mark for the report is reached through the menu, once, under its
    category (plots by scope and region); each has a description without "System Message"."""
    config = eras_run["config"]
    listed = {category: {s.path for s in walk.shown.values() if s.category == category}
              for category, _ in walk.rows}  # fmt: skip
    assert listed == _reported(eras_run["workdir"])
    assert {"Plots", "Cutflow", "Fit", "Summary"} <= set(listed)
    assert ("Search" in listed) == bool(config.get("searches"))
    plotted = {region for histogram in config["histograms"].values()  # where one is filled
               for region in histogram.get("regions") or config["regions"]}  # fmt: skip
    assert {s for c, s in walk.rows if c == "Plots"} == {
        f"{scope}: {region}" for scope in ["all eras", *ERAS] for region in plotted
    }
    for shown in walk.shown.values():
        assert shown.caption["text"].strip(), f"{shown.path}: no description"
        assert "System Message" not in shown.caption["text"], shown.path
        assert "system-message" not in shown.caption["html"], shown.path


@pytest.mark.slow
def test_figures_are_shown(walk, eras_run):
    """Every figure is decoded by the browser at the size of its PNG on disk, and shown."""
    figures = [s for s in walk.shown.values() if s.path.endswith(".png")]
    assert len(figures) == len([p for p in walk.shown if p.endswith(".png")]) >= 30
    for shown in figures:
        assert shown.mime == "image/png", shown.path
        width, height = _png_size(eras_run["workdir"] / shown.path)
        assert (shown.view["width"], shown.view["height"]) == (width, height), shown.path
        assert shown.view["shown"] > 0, shown.path


class _Cells(html.parser.HTMLParser):
    """The text of every table cell (``td``, ``th``) of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("td", "th"):
            self.cells.append("")
            self._inside = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.cells[-1] += data


CAPTIONED = {"ledger": "The event ledger", "systematics": "The systematic variations",
             "provenance": "The provenance of the results"}  # fmt: skip


@pytest.mark.slow
def test_summary_pages_are_shown(walk, eras_run):
    """The ledger, systematics and provenance pages are shown in the report's frame with
    every table cell of their files: the ledger lists each dataset, the systematics page each
    systematic, the provenance each input file."""
    workdir, config = eras_run["workdir"], eras_run["config"]
    pages = {Path(s.path).stem: s for s in walk.shown.values() if s.category == "Summary"}
    assert set(pages) == {"ledger", "systematics", "provenance"}
    for name, shown in pages.items():
        parser = _Cells()
        parser.feed((workdir / shown.path).read_text())
        assert shown.view["cells"] == [c.strip() for c in parser.cells], name
        assert CAPTIONED[name] in shown.caption["text"], name
    assert set(config["datasets"]) <= set(pages["ledger"].view["cells"])
    assert set(config["systematics"]) <= set(pages["systematics"].view["cells"])
    inputs = {f for spec in config["datasets"].values() for f in spec["files"]}
    assert inputs <= set(pages["provenance"].view["cells"])


@pytest.mark.slow
def test_tables_are_shown(walk, eras_run):
    """The cutflow CSVs, the fit's and searches' tables and workspaces are offered as downloads
    of their files' bytes; the description of each cutflow, fit and search result shows its
    Markdown table (without the provenance comment)."""
    workdir = eras_run["workdir"]
    downloads = [s for s in walk.shown.values() if "href" in s.view]
    assert {Path(s.path).suffix for s in downloads} == {".csv", ".json", ".md", ".tex"}
    for shown in downloads:
        header, data = shown.view["href"].split(",", 1)
        body = base64.b64decode(data) if header.endswith(";base64") else data.encode()
        assert body == (workdir / shown.path).read_bytes(), shown.path
        assert shown.view["download"] == Path(shown.path).name
    for shown in walk.shown.values():
        if shown.category not in TABLES:
            continue
        table = workdir / TABLES[shown.category](Path(shown.path))
        lines = [" ".join(line.split()) for line in table.read_text().split(MARK)[0].splitlines()]
        caption = {" ".join(line.split()) for line in shown.caption["text"].splitlines()}
        assert {line for line in lines if line} <= caption, (shown.path, table)
        assert "brewflow-provenance" not in shown.caption["text"], shown.path


@pytest.mark.slow
def test_no_browser_errors(walk):
    """No uncaught exception, console error or browser error log entry, and no request to
    anything but the report itself (data: URIs), on any page of the walk."""
    assert walk.problems == []
    assert len(walk.screenshots) > len(walk.shown) / 2
