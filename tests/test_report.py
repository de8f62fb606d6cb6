"""`respread report`: one self-contained HTML page, checked in headless Chromium.

The study and baselines inputs are real outputs of the embedded default (tests/data/report/README.md);
eval, compare and decompose inputs are made here through the real pipeline with the fake backend.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from fakes import FakeBackend
from typer.testing import CliRunner

from respread.measure.figures import jsonable
from respread.workflows.eval import evaluate_into
from respread.cli import app
from respread.errors import RespreadError
from respread.measure.run import EvalConfig
from respread.locate.compare import CompareConfig
from respread.workflows.compare import run_compare
from respread.locate.decompose import decompose_runs
from respread.report.page import build_report
from respread.tasks import load_prompts_file, select_tasks

DATA = Path(__file__).parent / "data" / "report"
WIDE = {str(i): 0.1 for i in range(1, 11)} | {"Sure, here is a longer reply about 7": 0.05}
NARROW = {"7": 0.7, "3": 0.2, "I pick 7 because it feels random": 0.1}


def _browser_or_skip():
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    from respread.report.browser import chromium_path

    if chromium_path() is None:
        pytest.fail("no Chromium on PATH: `bash scripts/install.sh dev` installs Debian's (or set RESPREAD_CHROMIUM)")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Every kind of input respread report reads, in one folder."""
    root = tmp_path_factory.mktemp("report-inputs")
    shutil.copytree(DATA / "study", root / "study")
    shutil.copytree(DATA / "baselines", root / "baselines")
    prompts = root / "stories.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": p}) for p in ("Write one sentence about rain.", "Name a dream.")), encoding="utf-8")
    tasks = select_tasks("integer_1_10,color,prime_below_50") + [load_prompts_file(prompts)]
    runs = {}
    for name, replies in (("wide", WIDE), ("narrow", NARROW)):
        config = EvalConfig(model=f"{name}-model", tasks=tasks, samples=40, exact=True, sample_closed=True)
        evaluate_into(config, root / name, "lenient", log=lambda _: None, backend_factory=lambda r=replies: FakeBackend(r))
        runs[name] = root / name
    stages = {"wide-model": WIDE, "narrow-model": NARROW}
    run_compare(CompareConfig(stages=list(stages), tasks="integer_1_10,prime_below_50", samples=40, resamples=50),
                root / "compare", log=lambda _: None, backend_factory=lambda model: FakeBackend(stages[model]))
    decomposition = jsonable(decompose_runs(runs["wide"], runs["narrow"], parse="lenient", resamples=50))
    (root / "decompose.json").write_text(json.dumps(decomposition), encoding="utf-8")
    return {"study": root / "study", "baselines": root / "baselines", "wide": runs["wide"], "narrow": runs["narrow"],
            "compare": root / "compare", "decompose": root / "decompose.json", "capability": root / "study" / "capability.json",
            "train": root / "study" / "train-spread-history"}


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    order = ["wide", "narrow", "study", "compare", "baselines", "train", "decompose", "capability"]
    return build_report([inputs[k] for k in order], out)


def test_every_kind_of_run_becomes_a_section_with_its_charts_and_files(report):
    html = report.read_text(encoding="utf-8")
    kinds = [k for k in ("across", "eval", "study", "compare", "baselines", "train", "decompose", "capability") if f'data-kind="{k}"' in html]
    assert kinds == ["across", "eval", "study", "compare", "baselines", "train", "decompose", "capability"]
    figures = sorted((report.parent / "report_figures").iterdir())
    stems = {p.stem for p in figures}
    # Each chart is inline SVG in the page, with a PNG and an SVG file beside it.
    assert html.count('<figure class="chart">') == len(stems) >= 12
    assert {p.suffix for p in figures} == {".png", ".svg"} and len(figures) == 2 * len(stems)
    for path in figures:
        head = path.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" if path.suffix == ".png" else b"<?xml" in head
    for expected in ("study-spread", "study-valid", "study-exact", "study-monitor", "across-spread", "wide-exact",
                     "compare-stages", "baselines-pareto", "train-spread-history-monitor"):
        assert expected in stems, expected
    # Self-contained: no script, style, font or image is fetched from anywhere.
    for fetches in ("<link", "src=", 'href="http', "@import", "<iframe", "fetch("):
        assert fetches not in html, fetches
    assert not re.search(r"url\((?!#)", html)  # only references inside the page's own SVGs
    # Inline SVGs share one id space: a repeated id would clip one chart with another's clip path.
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), [i for i in set(ids) if ids.count(i) > 1][:5]


def test_the_study_section_reads_as_the_study(report):
    html = report.read_text(encoding="utf-8")
    study = html[html.index('data-kind="study"'):html.index('data-kind="compare"')]
    assert "integer_1_100 (trained)" in study  # the trained task's own table, and its highlighted row
    for condition in ("before", "t1.5", "after-spread-history"):
        assert f"<td>{condition}</td>" in study
    assert "Top-5 valid picks" in study and "Capability" in study and "KL from original" in study
    assert "CPU-h" in study and "torch=" in study  # the arm's provenance
    # The exact panel draws the conditions whose exact.jsonl exists (t1.5's is left out of the fixture).
    svg = (report.parent / "report_figures" / "study-exact.svg").read_text(encoding="utf-8")
    assert "integer_1_10 · before" in svg and "integer_1_10 · after-spread-history" in svg and "· t1.5" not in svg


def test_eval_runs_carry_provenance_and_text_and_verifiable_tables(report, inputs):
    provenance = json.loads((inputs["wide"] / "provenance.json").read_text())
    assert provenance["invocations"][0]["samples_written"] == 40 * 5  # 3 closed/open tasks sampled + 2 text prompts
    assert provenance["versions"]["respread"] and provenance["cpu_hours"] >= 0
    html = report.read_text(encoding="utf-8")
    eval_part = html[html.index('data-kind="eval"'):html.index('data-kind="study"')]
    assert "Text task stories" in eval_part and "Categorical tasks" in eval_part
    assert "wall time · CPU-hours" in eval_part and "versions" in eval_part


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium_with_no_request_and_no_error(report, tmp_path):
    _browser_or_skip()
    from respread.report.browser import open_page

    with open_page(report, width=1360, height=900) as (page, log):
        charts = page.locator("figure.chart")
        tables = page.locator("div.table table")
        assert charts.count() >= 12 and tables.count() >= 20
        for i in range(charts.count()):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            box = chart.locator("svg").bounding_box()
            assert chart.locator("svg").is_visible() and box["width"] > 300 and box["height"] > 100, chart.locator("h3").inner_text()
            assert chart.locator("p.definition").inner_text().strip()
        for i in range(tables.count()):
            table = tables.nth(i)
            table.scroll_into_view_if_needed()
            assert table.is_visible() and table.locator("tbody tr").count() >= 1
        # Sorting by a header reorders rows (the page's one script works).
        table = page.locator('section[data-kind="study"] div.table table').first
        first_column = lambda: table.locator("tbody tr td:first-child").all_inner_texts()  # noqa: E731
        before = first_column()
        table.locator("th").nth(4).click()
        assert table.locator("th").nth(4).get_attribute("aria-sort") == "ascending"
        table.locator("th").nth(4).click()
        assert sorted(first_column()) == sorted(before)
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert log.requests == [report.resolve().as_uri()], log.requests
    assert log.errors == [], log.errors
    assert (tmp_path / "report.png").stat().st_size > 50_000


@pytest.mark.slow
def test_cli_writes_the_page_and_a_screenshot(inputs, tmp_path):
    _browser_or_skip()
    result = CliRunner().invoke(app, ["report", str(inputs["study"]), "--out", str(tmp_path / "r.html"), "--screenshot", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "r_figures" / "study-spread.svg").is_file()


def test_missing_pieces_are_left_out_with_a_note(inputs, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(inputs["wide"], partial)
    (partial / "metrics.json").unlink()
    (partial / "exact.jsonl").unlink()
    page = build_report([partial], tmp_path / "p.html").read_text(encoding="utf-8")
    assert "metrics.json is missing" in page and '<figure class="chart">' not in page
    assert "smollm2" not in page and "wide-model" in page


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "study.json").write_text("{not json"), "study.json is damaged"),
        (lambda d: (d / "before" / "exact.jsonl").write_text('{"task": 1\n{"task": "x", "probs": {}}\n'), "exact.jsonl, line 1: not a JSON record"),
    ],
)
def test_a_damaged_file_is_one_line_naming_it_and_exit_2(inputs, tmp_path, damage, message):
    study = tmp_path / "study"
    shutil.copytree(inputs["study"], study)
    damage(study)
    result = CliRunner().invoke(app, ["report", str(study), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0] and str(study) in lines[0]
    assert not (tmp_path / "r.html").exists()


def test_bad_inputs_are_one_line(tmp_path):
    with pytest.raises(RespreadError, match="is not a respread run directory"):
        build_report([tmp_path], tmp_path / "r.html")
    with pytest.raises(RespreadError, match="does not exist"):
        build_report([tmp_path / "nope"], tmp_path / "r.html")
    with pytest.raises(RespreadError, match="must end in .html"):
        build_report([tmp_path], tmp_path / "r.pdf")
    stray = tmp_path / "x.json"
    stray.write_text('{"hello": 1}')
    with pytest.raises(RespreadError, match="not a file respread report can read"):
        build_report([stray], tmp_path / "r.html")


def test_a_truncated_last_line_is_what_kill_9_leaves_and_is_read_past(inputs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(inputs["narrow"], run)
    with (run / "exact.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"key": "cut off by kill -9", "ta')
    page = build_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Exact answer distribution" in page


def test_bad_output_places_are_one_line(inputs, tmp_path):
    (tmp_path / "folder.html").mkdir()
    (tmp_path / "afile").write_text("x")
    for out, message in ((tmp_path / "folder.html", "is a directory"), (tmp_path / "afile" / "r.html", "cannot write the report")):
        result = CliRunner().invoke(app, ["report", str(inputs["capability"]), "--out", str(out)])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and message in result.output, result.output
    result = CliRunner().invoke(app, ["report", str(inputs["capability"]), "--out", str(tmp_path / "r.html"), "--screenshot", str(tmp_path / "shot")])
    assert result.exit_code == 2 and "must end in .png" in result.output


def test_a_file_of_the_wrong_shape_is_one_line_naming_it(inputs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(inputs["wide"], run)
    for content in ("[]", "{}"):
        (run / "metrics.json").write_text(content)
        with pytest.raises(RespreadError, match=f"{run}.* is not what respread wrote|{run}.*not a JSON object"):
            build_report([run], tmp_path / "r.html")


def test_inputs_are_read_by_what_they_hold_not_by_their_names(inputs, tmp_path):
    renamed = tmp_path / "lineage.json"
    shutil.copy(inputs["compare"] / "compare.json", renamed)
    page = build_report([renamed, inputs["wide"] / "samples.jsonl", inputs["wide"]], tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.count('data-kind="compare"') == 1 and page.count('data-kind="eval"') == 1  # the same run twice: once
    # A study still under way (no study.json yet) shows its finished parts.
    partial = tmp_path / "study-under-way"
    shutil.copytree(inputs["wide"], partial / "before")
    shutil.copytree(inputs["train"], partial / "train-spread-history")
    page = build_report([partial], tmp_path / "p.html").read_text(encoding="utf-8")
    assert 'data-kind="eval"' in page and 'data-kind="train"' in page and "no summary file of its own" in page
