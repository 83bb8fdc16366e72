"""bench.charts on result files written by the bench code (tests/bench/data/: the
balances part of a full `make bench` and `bench.run grades --quick --only set2,get
--concurrency 32,64`, as bench/results/ holds them).

The figures read from the table are checked against the same run's raw measurements,
and the PNGs are opened and looked at: their size follows from the figures, and they
hold the bars' and lines' colours, not a blank canvas.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bench import charts

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def pixels_of(png: Path, colour: str) -> int:
    with Image.open(png) as image:
        counts = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(count for count, pixel in counts if pixel == rgb(colour))


def test_balances_figures_are_the_runs_own_measurements():
    record = load("balances.json")
    applied = record["measurements"]["applied"]
    ours, peer = applied["ours"], applied["pgbench_tpcb"]
    found = {figure.id: figure for figure in charts.figures(record)}
    # 1.cpu (a breakdown), 1.acc (no yardstick) and 2 (no ratio) are not figures
    assert list(found) == ["1", "1.p50", "1.p99"]
    rate, p50, p99 = found["1"], found["1.p50"], found["1.p99"]
    assert (rate.kind, p50.kind, p99.kind) == (charts.RATE, charts.LATENCY, charts.LATENCY)
    assert rate.ours == round(ours["rate"]) and rate.peer == round(peer["rate"])
    assert p50.ours == round(ours["p50_ms"], 2) and p99.peer == round(peer["p99_ms"], 1)
    assert rate.ratio == round(ours["rate"] / peer["rate"], 2)
    assert rate.peer_name == "tpcb-like" and rate.target_ratio() == 0.5


def test_a_p50_p99_pair_is_two_figures_named_by_the_row():
    record = load("grades-set2-get.json")
    found = charts.figures(record)
    sets = record["measurements"]["set2"]
    by_name = {(figure.id, figure.what): figure for figure in found}
    for mine, theirs in zip(sets["ours"], sets["peer"]):
        c = mine["connections"]
        rate = by_name["1b", f"2 replicas durable sets/s c={c}"]
        p99 = by_name["1b", f"p99 ms c={c}"]
        assert rate.ours == round(mine["rps"]) and rate.peer == round(theirs["rps"])
        assert p99.ours == pytest.approx(mine["p99_ms"], rel=0.01)
        assert p99.peer == pytest.approx(theirs["p99_ms"], rel=0.01)
        assert rate.peer_name == p99.peer_name == "go-grades-js"
    # 1b's row-count check and the HTTP ceiling (no unit) are left out
    assert {figure.id for figure in found} == {"1b", "2"}
    assert len(found) == 12  # 2 measurements x 2 connection counts x (rate, p50, p99)


@pytest.mark.parametrize("name", ["balances.json", "grades-set2-get.json"])
def test_a_runs_chart_has_a_panel_per_figure(tmp_path, name):
    record = load(name)
    count = len(charts.figures(record))
    out = charts.save_beside(tmp_path / name, record)
    assert out == tmp_path / Path(name).with_suffix(".png")
    columns = min(charts.PANEL_COLUMNS, count)
    rows = -(-count // columns)
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = charts.PANEL_INCHES
        assert image.size == (
            round(width * columns * charts.DPI),
            round((height * rows + 0.6) * charts.DPI),
        )
    # ours and the yardstick both drawn, each as large a bar area as a panel's worth
    assert pixels_of(out, charts.OURS_COLOUR) > 1000 * count
    assert pixels_of(out, charts.PEER_COLOUR) > 1000 * count


def test_a_run_without_figures_draws_nothing(tmp_path):
    record = load("balances.json")
    record["table"] = [row for row in record["table"] if not row["ratio"]]
    assert charts.draw_run(record, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_the_trend_draws_each_headline_ratio_across_the_files(tmp_path):
    first = load("balances.json")
    second = json.loads(json.dumps(first))
    for row in second["table"]:  # a run where the headline ratio halved
        if row["id"] == "1":
            row["ratio"] = "0.34x"
    series, targets = charts.trend_series([first, second])
    ratio = next(float(row["ratio"][:-1]) for row in first["table"] if row["id"] == "1")
    assert series == {"balances 1 tasks applied/s, 202 to final": [ratio, 0.34]}
    assert targets == {"balances 1 tasks applied/s, 202 to final": 0.5}
    for index, record in enumerate((first, second)):
        (tmp_path / f"balances-{index}.json").write_text(json.dumps(record))
    out = tmp_path / "trend.png"
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", *sorted(map(str, tmp_path.glob("*.json")))]
        + ["--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"chart: {out}" in done.stdout
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] >= 700 and image.size[1] == 550
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 20  # more than a blank canvas and text


def test_the_trend_refuses_a_file_that_is_not_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "bad.json" in done.stderr
    assert not (tmp_path / "trend.png").exists()
