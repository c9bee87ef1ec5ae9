"""The HTML reports render in a real browser: headless Chromium (Debian's ``chromium``, no
browser download) loads report.html and benchmark.html from disk, offline, and the rendered DOM
and a screenshot show the plots and tables.

Without a browser the test skips with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.daily_retrain import daily_retrain
from is_core.benchmark.grid import BenchmarkConfig, run_cell
from is_core.benchmark.outputs import write_outputs
from is_core.report.plots import PALETTE
from tests.conftest import RUN_DATE, small_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
    if path is None:
        reason = ("headless Chromium not found: install Debian's package (apt-get install "
                  "chromium, which needs root; `make test` does it in CI)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return path


def browse(chromium: str, page: Path, tmp: Path, *action: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *action, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, check=True)


def decode_png(path: Path) -> np.ndarray:
    """RGB(A) pixels of an 8-bit, non-interlaced PNG (what Chromium writes), shape (h, w, c)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), dtype=np.int32)
    prev = np.zeros(width * bpp, dtype=np.int32)
    for r in range(height):
        f, line = raw[r, 0], raw[r, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) % 256
        else:  # Sub, Average, Paeth depend on the pixel to the left: byte by byte
            cur = np.zeros_like(line)
            for i in range(line.size):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + pred) % 256
        out[r], prev = cur, cur
    return out.reshape(height, width, bpp)[:, :, :3]


def has_color(pixels: np.ndarray, hex_color: str, min_pixels: int = 50) -> bool:
    rgb = np.array([int(hex_color[j:j + 2], 16) for j in (1, 3, 5)])
    return int((np.abs(pixels - rgb).sum(axis=2) < 30).sum()) >= min_pixels


@pytest.fixture(scope="module")
def pages(small_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("browser-runs")
    result = daily_retrain(config=small_config(small_data_root, out,
                                               evaluation={"n_boot": 50}), run_date=RUN_DATE)
    config = BenchmarkConfig(scenarios=["misspecified_mean_shift", "no_shift"], seeds=[0, 1],
                             strategies=["none", "logistic", "true"], size_factor=0.1,
                             output_dir=str(out / "bench"))
    rows = [r for s in config.scenarios for seed in config.seeds for r in run_cell(config, s,
                                                                                   seed)]
    paths = write_outputs(pd.DataFrame(rows), config, config.output_dir)["paths"]
    return {"run": Path(result["run_dir"]) / "report.html", "benchmark": Path(paths["html"])}


class TestReportsInChromium:
    def test_run_report_dom_has_plots_and_tables(self, chromium, pages, tmp_path):
        dom = browse(chromium, pages["run"], tmp_path, "--dump-dom").stdout
        assert dom.count("<svg") >= 4, "the four charts (reliability, histogram, ESS, k̂)"
        assert dom.count("<polyline") >= 4 and dom.count("<table") >= 4
        assert 'id="verdict"' in dom and "Importance weighting" in dom
        for anchor in ("metrics", "calibration", "weights", "target-ctr", "inputs"):
            assert f'id="{anchor}"' in dom, anchor

    def test_run_report_screenshot_shows_the_charts(self, chromium, pages, tmp_path):
        shot = tmp_path / "run.png"
        browse(chromium, pages["run"], tmp_path, "--window-size=1000,1400",
               f"--screenshot={shot}")
        pixels = decode_png(shot)
        assert pixels.shape[:2] == (1400, 1000)
        # the series colours of the reliability chart and the weight histogram are on screen
        assert has_color(pixels, PALETTE[0]) and has_color(pixels, PALETTE[1])
        assert (pixels.sum(axis=2) < 600).mean() > 0.02  # not a blank page

    def test_benchmark_report_renders_verdicts_charts_and_leaderboard(self, chromium, pages,
                                                                      tmp_path):
        dom = browse(chromium, pages["benchmark"], tmp_path, "--dump-dom").stdout
        assert dom.count('class="verdict"') == 2
        assert dom.count("<svg") == 4  # two forest plots per scenario
        assert dom.count("<table") == 2 and "gap recovered" in dom
        shot = tmp_path / "bench.png"
        browse(chromium, pages["benchmark"], tmp_path, "--window-size=1000,1400",
               f"--screenshot={shot}")
        pixels = decode_png(shot)
        assert has_color(pixels, PALETTE[0]) and has_color(pixels, PALETTE[1])
