"""PDF report through WeasyPrint: produced, several pages, renders to an image."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from regionaudit.errors import BadOption
from regionaudit.report import render_html, write_compare_pdf, write_pdf
from fake_results import empty_result, sample_compare, sample_result

weasyprint = pytest.importorskip("weasyprint")


@pytest.fixture(scope="module")
def pdf_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    write_pdf(sample_result(), path)
    return path


def test_pdf_written(pdf_path):
    data = pdf_path.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 10_000


def test_pdf_pages_and_page_numbers():
    from regionaudit.report.pdf import render_document

    doc = render_document(render_html(sample_result()))
    assert len(doc.pages) >= 2
    text = doc.write_pdf()
    assert text.startswith(b"%PDF")


def test_empty_result_pdf(tmp_path):
    out = tmp_path / "empty.pdf"
    write_pdf(empty_result(), out)
    assert out.read_bytes().startswith(b"%PDF")


def test_compare_pdf(tmp_path):
    out = tmp_path / "cmp.pdf"
    write_compare_pdf(sample_compare(), out)
    assert out.read_bytes().startswith(b"%PDF")


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) not installed")
def test_pdf_renders_to_png(pdf_path, tmp_path):
    prefix = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf_path), str(prefix)], check=True)
    pngs = list(tmp_path.glob("page*.png"))
    assert len(pngs) == 1
    data = pngs[0].read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 2000


def test_missing_weasyprint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import now raises ImportError
    out = tmp_path / "r.pdf"
    with pytest.raises(BadOption, match=r"PDF output needs WeasyPrint's system libraries \(Pango\)"):
        write_pdf(empty_result(), out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
