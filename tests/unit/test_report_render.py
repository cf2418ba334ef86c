"""Rendering the report's document model to Markdown and to self-contained HTML."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from pathlib import Path

from forecaster.report.document import Banner, Bullets, Heading, Image, Paragraph, Table, render_html, render_markdown
from forecaster.report.labels import STAND_IN_TAG, fmt_ci, fmt_pct, model_label, series_label
from forecaster.report.stats import Estimate


def tiny_png(path: Path) -> Path:
    """A valid 1x1 PNG written without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


def blocks(png: Path) -> list:
    return [
        Heading(1, "Report <x>"),
        Banner("stand-in model"),
        Paragraph("a < b & c"),
        Bullets(["one", "two"]),
        Table(["model", "MAE (W)"], [["base | tuned", "12.0 (10.0 to 14.0)"]], "caption"),
        Image(png, "plot", "what it shows"),
    ]


def test_when_rendering_html_then_images_are_inline_and_nothing_is_fetched(tmp_path: Path) -> None:
    png = tiny_png(tmp_path / "plot.png")
    page = render_html(blocks(png), "t")
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    assert f'src="data:image/png;base64,{encoded}"' in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<style>" in page
    assert "imagesLoaded" in page


def test_when_text_has_markup_characters_then_html_escapes_them(tmp_path: Path) -> None:
    page = render_html(blocks(tiny_png(tmp_path / "p.png")), "t")
    assert "Report &lt;x&gt;" in page
    assert "a &lt; b &amp; c" in page
    assert 'class="banner"' in page


def test_when_rendering_markdown_then_images_link_by_name_and_pipes_are_escaped(tmp_path: Path) -> None:
    text = render_markdown(blocks(tiny_png(tmp_path / "plot.png")))
    assert "![plot](plot.png)" in text
    assert "base \\| tuned" in text
    assert "> **WARNING: stand-in model**" in text
    assert "| model | MAE (W) |" in text


def test_when_base_is_a_stand_in_then_learned_models_carry_the_tag_and_baselines_do_not() -> None:
    assert STAND_IN_TAG in model_label("base", True)
    assert STAND_IN_TAG in series_label("finetuned", "all_covariates", True)
    assert STAND_IN_TAG not in model_label("persistence", True)
    assert STAND_IN_TAG not in model_label("base", False)


def test_when_formatting_estimates_then_ci_follows_the_value() -> None:
    assert fmt_ci(Estimate(12.0, 10.0, 14.0)) == "12.0 (10.0 to 14.0)"
    assert fmt_ci(Estimate(0.8, 0.75, 0.85), "pct") == "80 % (75 % to 85 %)"
    assert fmt_ci(Estimate(5.0, float("nan"), float("nan"))) == "5.00"
    assert fmt_pct(-0.26) == "\u221226 %"
    assert fmt_pct(-0.0001) != "\u22120 %"
