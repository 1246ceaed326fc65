"""PDF report through WeasyPrint: produced, several pages, renders to an image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from regionaudit.errors import BadOption
from regionaudit.outputs import OutputRequest, write_outputs
from regionaudit.report.html import render_html
from fake_results import empty_result, sample_compare, sample_result


def can_import(name: str) -> bool:
    try:
        __import__(name)
    except (ImportError, OSError):  # WeasyPrint raises OSError where its C libraries are missing
        return False
    return True


# every test but the last needs WeasyPrint's system libraries; the last checks the error without them
needs_weasyprint = pytest.mark.skipif(not can_import("weasyprint"), reason="WeasyPrint cannot be imported here (Pango missing)")


@pytest.fixture(scope="module")
def pdf_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    write_outputs(sample_result(), [OutputRequest("pdf", path)])
    return path


@needs_weasyprint
def test_pdf_written(pdf_path):
    data = pdf_path.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 10_000


@needs_weasyprint
def test_pdf_pages_and_page_numbers():
    from regionaudit.report.pdf import render_document

    doc = render_document(render_html(sample_result()))
    assert len(doc.pages) >= 2
    text = doc.write_pdf()
    assert text.startswith(b"%PDF")


@needs_weasyprint
def test_empty_result_pdf(tmp_path):
    out = tmp_path / "empty.pdf"
    write_outputs(empty_result(), [OutputRequest("pdf", out)])
    assert out.read_bytes().startswith(b"%PDF")


@needs_weasyprint
def test_compare_pdf(tmp_path):
    out = tmp_path / "cmp.pdf"
    write_outputs(sample_compare(), [OutputRequest("pdf", out)])
    assert out.read_bytes().startswith(b"%PDF")


@needs_weasyprint
def test_long_node_names_stay_on_the_page():
    """A 120-character node name without a break is wrapped wherever it is shown (WeasyPrint's
    laid-out text boxes all end inside the page): unwrapped, the slice table's "made by" label
    pushed its numbers 300 pt past the right edge."""
    from dataclasses import replace

    from regionaudit.report.pdf import render_document

    long = "encoder_block_" + "x" * 106
    result = sample_result(layer_names=[long, "fc2/Relu"])
    result.slice = replace(result.slice, boundary_length_per_layer={long: 14.0, "fc2/Relu": 10.0})
    doc = render_document(render_html(result))
    outside = [(i, b.text) for i, page in enumerate(doc.pages) for b in page._page_box.descendants()
               if type(b).__name__ == "TextBox" and b.position_x + b.width > page.width]
    assert outside == []


def _grey(png) -> "np.ndarray":
    """A PNG as grey levels in [0, 1] (1 = white), through Pillow or else matplotlib."""
    try:
        from PIL import Image
    except ImportError:
        image = pytest.importorskip("matplotlib.image", reason="neither Pillow nor matplotlib can read PNG")
        rgb = image.imread(png)[..., :3]
        return rgb.mean(axis=-1)
    with Image.open(png) as im:
        return np.asarray(im.convert("L"), dtype=float) / 255


@needs_weasyprint
@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) not installed")
def test_pdf_renders_to_png(pdf_path, tmp_path):
    """Poppler finds every page WeasyPrint laid out, each A4 and inked; page 1 is a real page of content."""
    from regionaudit.report.pdf import render_document

    expected = len(render_document(render_html(sample_result())).pages)
    assert expected >= 2
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf_path)], check=True, capture_output=True, text=True).stdout
        assert re.search(rf"^Pages:\s+{expected}$", info, re.M), info
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf_path), str(tmp_path / "page")], check=True)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert len(pngs) == expected
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG")
        grey = _grey(png)
        height, width = grey.shape
        assert abs(height / width - 297 / 210) < 0.02, (png.name, grey.shape)  # A4 portrait
        ink = (grey < 0.9).mean()
        assert 0.005 < ink < 0.6, (png.name, ink)  # neither blank nor a dark block
    first = _grey(pngs[0])
    assert 0.05 < (first < 0.9).mean() < 0.6  # title, headline numbers and a plot: well inked
    assert first.std() > 0.1  # contrast: text and lines on white, not a flat grey


def test_missing_weasyprint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import now raises ImportError
    out = tmp_path / "r.pdf"
    with pytest.raises(BadOption, match=r"PDF output needs WeasyPrint's system libraries \(Pango\)"):
        write_outputs(empty_result(), [OutputRequest("pdf", out)])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
