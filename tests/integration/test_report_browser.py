"""The report in a real browser: headless Chromium, offline, renders every chart.

Skips where no Chromium is installed (`apt-get install chromium` enables it; .ci/run does).
The browser runs with a proxy that goes nowhere, so a chart needing the network would fail.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from ml.report import write_report
from tests.marketing.scored import marketing_dir, shared_settings

__all__ = ["marketing_dir"]

pytestmark = [pytest.mark.integration, pytest.mark.browser]

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
N_CHARTS = 15


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> str:
    path = find_browser()
    if path is None:
        pytest.skip(
            "no headless Chromium: `apt-get install chromium` (Debian/Ubuntu) to run the"
            " browser test; .ci/run installs it"
        )
    return path


@pytest.fixture(scope="module")
def report(
    marketing_dir: Path, generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    outputs = tmp_path_factory.mktemp("report")
    return write_report(shared_settings(marketing_dir, generated_data, outputs))


@pytest.fixture(scope="module")
def rendered(
    browser: str, report: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, bytes]:
    """The DOM after scripts ran, and a screenshot, from one headless Chromium run."""
    where = tmp_path_factory.mktemp("chromium")
    dom = run_headless(
        browser,
        where / "profile",
        "--dump-dom",
        f"--screenshot={where / 'report.png'}",
        "--window-size=1200,2400",
        "--force-device-scale-factor=0.5",
        "--hide-scrollbars",
        report.as_uri(),
    ).stdout
    return dom, (where / "report.png").read_bytes()


def run_headless(browser: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        # Offline: every request would go to a closed port.
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        # Let scripts run to completion before the DOM is dumped or the page captured.
        "--virtual-time-budget=15000",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_every_chart_renders_an_svg_without_network(rendered: tuple[str, bytes]) -> None:
    dom, _ = rendered
    sections = re.split(r'(?=<section class="segmart-chart")', dom)[1:]
    assert len(sections) == N_CHARTS
    for section in sections:
        name = re.match(r'<section class="segmart-chart" id="chart-([a-z-]+)"', section)[1]
        if 'data-gap="true"' in section:
            # A chart the run cannot have yet (one scored as_of: no transitions) is a sentence.
            assert re.search(r"<p[^>]*>[^<]{20,}</p>", section), f"gap {name} says nothing"
            continue
        assert 'class="main-svg"' in section, f"chart {name} did not render"
        assert re.search(r"<(path|rect)\b", section), f"chart {name} drew nothing"


def png_pixels(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and raw pixel bytes of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bpp
    pixels = bytearray(height * stride)
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        # PNG filters 1-4 (Sub, Up, Average, Paeth) predict each byte from its neighbours.
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                upper_left = previous[i - bpp] if i >= bpp else 0
                estimate = left + up - upper_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - upper_left))
                nearest = (left, up, upper_left)[distances.index(min(distances))]
                line[i] = (line[i] + nearest) & 0xFF
        pixels[row * stride : (row + 1) * stride] = line
        previous = line
    return width, height, bpp, bytes(pixels)


def test_the_report_screenshot_is_not_blank(rendered: tuple[str, bytes]) -> None:
    _, screenshot = rendered
    width, height, bpp, pixels = png_pixels(screenshot)
    colours = {pixels[i : i + 3] for i in range(0, len(pixels), bpp)}
    n_pixels = width * height
    n_white = sum(pixels[i : i + 3] == b"\xff\xff\xff" for i in range(0, len(pixels), bpp))
    assert len(colours) > 200, f"only {len(colours)} colours: the page looks blank"
    assert n_white < 0.97 * n_pixels, "the page is almost all white"
