"""Charts: SVGs drawn from the data, byte-identical for the same data, and a page that needs
nothing from the network."""

import re
import subprocess
import sys

from flows.release import charts
from flows.warehouse import Warehouse
from tests.conftest import ROOT, corpus


def test_every_chart_is_an_svg_with_its_title(sample_warehouse):
    with Warehouse(sample_warehouse).connect() as con:
        svgs = charts.charts(con)
    assert list(svgs) == ["sources", "sentence-lengths", "languages", "removals", "growth"]
    assert all(svg.lstrip().startswith("<?xml") and "<svg" in svg for svg in svgs.values())
    assert "Lines removed, by rule" in svgs["removals"] and "comment.attribution" in svgs["removals"]
    assert "communist_revolution" in svgs["sources"]


def test_charts_are_byte_identical_across_processes(sample_warehouse):
    draw = ("import sys; from pathlib import Path; from flows.release import charts; from flows.warehouse import Warehouse; "
            "con = Warehouse(Path(sys.argv[1])).connect(); sys.stdout.write(charts.charts(con)['sources'])")
    outputs = {subprocess.run([sys.executable, "-c", draw, str(sample_warehouse)], capture_output=True, text=True,
                              cwd=ROOT, env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout for seed in ("1", "2")}
    assert len(outputs) == 1 and "<svg" in outputs.pop()


def test_the_report_is_one_self_contained_page(sample_warehouse, tmp_path):
    out = tmp_path / "report.html"
    assert "5 charts, snapshot 1" in corpus("report", str(out), "--warehouse", str(sample_warehouse))
    page = out.read_text()
    assert page.count("<svg") == 5
    assert "<script" not in page and "<img" not in page and "<link" not in page
    # Nothing to fetch: no source, link or style URL but the charts' own clip paths (url(#id));
    # XML namespace names are names, not fetched.
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//|url\((?!#)", page)
    assert "1,358" in page


def test_a_label_that_looks_like_tex_is_drawn_as_text(tmp_path):
    raw = tmp_path / "raw"
    (raw / "$\\nosuchcommand$").mkdir(parents=True)
    (raw / "$\\nosuchcommand$" / "a.txt").write_text("A document from an oddly named folder. It has two sentences.")
    wh = tmp_path / "wh"
    corpus("run", str(raw), "--warehouse", str(wh))
    with Warehouse(wh).connect() as con:
        svgs = charts.charts(con)
    assert "$\\nosuchcommand$" in svgs["sources"]
    assert "wrote" in corpus("report", str(tmp_path / "report.html"), "--warehouse", str(wh))
