"""The finance report in a real headless browser (Debian's chromium; `scripts/ensure-chromium` installs it):
what a person sees is checked on the rendered page, not on our own HTML string. The DOM chromium built
holds the chart's bars and the totals, which must equal the engine's per contract (as `contract show`
measures them) summed per currency; the screenshot shows the bars' colour; the browser logs no console
message (the page has no script, and a blocked load or a CSP violation would be logged)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.report import add_engagement
from pssync.money import Money
from pssync.ops import contract_view
from pssync.ops.contract_view import Cutoff, LoggedCommand
from pssync.ops.finance_report.chart import PALETTE
from pssync.ops.finance_report.gather import build_report
from pssync.ops.finance_report.render import render
from tests.fakes import InMemoryVersionStore

ENSURE_CHROMIUM = Path(__file__).resolve().parents[2] / "scripts" / "ensure-chromium"
INSTALL_GUARD_SECONDS = 900  # apt-get on a slow mirror; a hang guard, not a timing assertion


def _find_chromium() -> str | None:
    """The system chromium; under CI the project's own set-up step installs it when missing (`make test`
    runs scripts/ensure-chromium first; this covers a run that did not)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI"):
        subprocess.run([str(ENSURE_CHROMIUM)], check=False, timeout=INSTALL_GUARD_SECONDS)  # noqa: S603
        found = shutil.which("chromium")
    return found


CHROMIUM = _find_chromium()
HANG_GUARD_SECONDS = 180  # a wedged browser fails the test; not a timing assertion
GENERATED = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
AS_OF = "2026-10-31"
HOSTILE = '<script>alert("owned")</script> Ltd'
FIGURES = {
    "recognised_to_date": "recognised_to_date",
    "billed_to_date": "billed",
    "collected_to_date": "collected",
    "receivable": "receivable",
    "contract_asset": "contract_asset",
    "contract_liability": "contract_liability",
}

if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("chromium is missing and scripts/ensure-chromium could not install it", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: run scripts/ensure-chromium")


class NoCommands:
    def logged_commands(self) -> Iterable[LoggedCommand]:
        return []


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless=new",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
        *(["--no-sandbox"] if os.geteuid() == 0 else []),  # chromium refuses root with its sandbox on
        *args,
        page.as_uri(),
    ]
    run = subprocess.run(  # noqa: S603 - the system browser, fixed argv
        command, capture_output=True, text=True, timeout=HANG_GUARD_SECONDS, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run


def _console_messages(stderr: str) -> list[str]:
    """What the page logged: chromium writes every console message (errors, CSP violations) as CONSOLE."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


class _Dom(HTMLParser):
    """The elements a reader looks at: chart bars, figures by name, scripts, and all the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.bars: list[dict[str, str]] = []
        self.charts = 0
        self.scripts = 0
        self.figures: dict[tuple[str, str], list[str]] = {}
        self.text: list[str] = []
        self._figure: tuple[str, str] | None = None
        self._chart = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.scripts += tag == "script"
        if tag == "svg" and "waterfall" in a.get("class", ""):
            self.charts += 1
            self._chart = a["data-currency"]
        if tag == "rect" and "bar" in a.get("class", "").split():
            self.bars.append({**a, "chart": self._chart})
        if "data-figure" in a:
            self._figure = (a["data-figure"], a["data-currency"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._figure is not None:
            self.figures.setdefault(self._figure, []).append(data)
            self._figure = None


def _png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Rows of RGB pixels of an 8-bit, non-interlaced PNG (what chromium writes), filters undone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        header = data if kind == b"IHDR" else header
        idat += data if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 4 if colour == 6 else 3
    stride = width * channels
    raw = zlib.decompress(idat)
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line) if channels == 3 else bytes(b for j, b in enumerate(line) if j % 4 != 3))
        previous = line
    return width, height, rows


@pytest.fixture(scope="module")
def portfolio() -> tuple[InMemoryVersionStore, list[str]]:
    store = InMemoryVersionStore()
    return store, [add_engagement(store, n, HOSTILE if n == 1 else None) for n in range(6)]


@pytest.fixture
def page(tmp_path: Path, portfolio: tuple[InMemoryVersionStore, list[str]]) -> Path:
    store, ids = portfolio
    report = build_report(store, ids, Cutoff.parse(AS_OF, GENERATED), generated_at=GENERATED)
    path = tmp_path / "report.html"
    path.write_text(render(report), encoding="utf-8")
    return path


def test_the_browser_shows_the_chart_and_the_engines_totals_and_logs_nothing(
    tmp_path: Path, page: Path, portfolio: tuple[InMemoryVersionStore, list[str]]
) -> None:
    store, ids = portfolio
    run = _chromium(tmp_path, page, "--dump-dom")
    dom = _Dom()
    dom.feed(run.stdout)

    assert _console_messages(run.stderr) == []
    assert dom.charts == 2  # EUR and USD
    assert dom.bars and all(float(bar["height"]) > 0 and float(bar["width"]) > 0 for bar in dom.bars)
    assert dom.scripts == 0 and HOSTILE in "".join(dom.text)  # the customer's name is text

    cutoff = Cutoff.parse(AS_OF, GENERATED)
    expected: dict[tuple[str, str], Money] = {}
    for contract_id in ids:
        b = contract_view.show(store, NoCommands(), contract_id, cutoff).balances
        for figure, field in FIGURES.items():
            value = getattr(b, field) or Money.zero(b.currency)
            key = (figure, b.currency)
            expected[key] = expected.get(key, Money.zero(b.currency)) + value
    for (figure, currency), money in expected.items():
        shown = dom.figures[(figure, currency)]
        assert [Decimal(s.replace(",", "")) for s in shown] == [money.amount], (figure, currency)
    # the chart's bars add up to the waterfall's total shown under it, per currency
    for currency in ("EUR", "USD"):
        drawn = sum(Decimal(bar["data-amount"]) for bar in dom.bars if bar["chart"] == currency)
        [total] = dom.figures[("waterfall_sum", currency)]
        assert drawn == Decimal(total.replace(",", ""))


def test_the_screenshot_shows_the_bars(tmp_path: Path, page: Path) -> None:
    shot = tmp_path / "report.png"
    run = _chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1280,800")
    assert _console_messages(run.stderr) == []
    width, height, rows = _png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 800)
    first_series = bytes(int(PALETTE[0][i : i + 2], 16) for i in (1, 3, 5))
    painted = sum(row[x : x + 3] == first_series for row in rows for x in range(0, len(row), 3))
    assert painted > 500  # a bar of the first series, not a stray pixel: each bar is tens of pixels wide
