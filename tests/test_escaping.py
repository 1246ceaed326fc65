"""A real ONNX model whose every string is an injection attempt, audited through the CLI and
rendered in every format: HTML (with its SVG plots), Markdown card, JUnit XML and JSON stay inert."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from regionaudit.cli import main

PAYLOAD = ("<script>alert(1)</script>\"'><img src=x onerror=alert(2)>{{7*7}}{% raw %}"
           "](javascript:alert(3)) | # `x` *y* _z_ $\\frac{1}{2}$ &amp; <!-- \u202e")


def nasty(tag: str) -> str:
    return f"{tag}{PAYLOAD}"


RELU = nasty("relu1\nsecond line")  # the ReLU node's name: operators, spaces, a newline


def nasty_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    x, h, r, y = (nasty(t) for t in ("in", "hidden", "relu", "out"))
    w1, b1, w2, b2 = (nasty(t) for t in ("w1", "b1", "w2", "b2"))
    nodes = [
        helper.make_node("Gemm", [x, w1, b1], [h], name=nasty("fc1"), doc_string=nasty("doc-fc1")),
        helper.make_node("Relu", [h], [r], name=RELU),
        helper.make_node("Gemm", [r, w2, b2], [y], name=nasty("fc2")),
    ]
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in ((w1, (4, 8)), (b1, (8,)), (w2, (8, 3)), (b2, (3,)))]
    graph = helper.make_graph(nodes, nasty("graph"), [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 3])], inits,
                              doc_string=nasty("graph-doc"))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name=nasty("producer"),
                              producer_version=nasty("v"), doc_string=nasty("model-doc\x00"))
    helper.set_model_props(model, {nasty("key"): nasty("value")})
    return model


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nasty")
    sub = folder / "<b onmouseover=alert(5)>folder"  # the path is model-controlled too
    sub.mkdir()
    path = sub / "m<svg onload=alert(4)>.onnx"
    onnx.save(nasty_model(), str(path))
    out = {k: folder / f"out.{k}" for k in ("html", "json", "md", "xml")}
    # the 2-D slice stays on: its facts and picture name the model's nodes too
    argv = [str(path), "--pairs", "4", "--max-points", "4", "-q", "-o", str(out["html"]), "--json", str(out["json"]),
            "--card", str(out["md"]), "--junit", str(out["xml"]), "--fail-if", "density.summary.median < 0",
            "--fail-if", f"density.knots_per_layer.{RELU} < 0"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return {k: p.read_text(encoding="utf-8") for k, p in out.items()}


def test_html_is_inert(rendered):
    html = rendered["html"]
    parser = _Tags()
    parser.feed(html)
    names = {t for t, _ in parser.tags}
    assert not names & {"script", "img", "iframe", "object", "embed", "b"}, names
    for tag, attrs in parser.tags:
        for key, value in attrs:
            assert not key.startswith("on"), (tag, key)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, key, value)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "{{7*7}}" in html and "{% raw %}" in html  # never evaluated as a template


def test_svg_text_is_inert(rendered):
    svgs = re.findall(r"<svg\b.*?</svg>", rendered["html"], re.S)
    assert svgs
    for svg in svgs:
        root = ET.fromstring(svg)  # well-formed: every name in it is XML-escaped
        for el in root.iter():
            assert not el.tag.endswith("script")
            assert not any(k.startswith("on") for k in el.attrib)


def test_markdown_card_is_inert(rendered):
    card = rendered["md"]
    own = re.sub(r"<!-- regionaudit:(start|end) -->|\]\(<[^<>\s]+>\)", "", card)  # the card's own markup
    assert not re.search(r"(?<!\\)<[A-Za-z/!?]", own), own  # no raw HTML from any string
    assert not re.search(r"(?<!\\)\]\(javascript", own)  # no link made of a name
    assert "m\\<svg onload=alert(4)\\>" in card or "m&lt;svg onload=alert(4)&gt;" in card  # escaped, readable


def test_junit_is_inert(rendered):
    root = ET.fromstring(rendered["xml"])
    assert root.tag == "testsuites"
    assert not any(el.tag not in ("testsuites", "testsuite", "testcase", "failure", "system-out") for el in root.iter())


def test_json_keeps_strings_exactly(rendered):
    result = json.loads(rendered["json"])
    names = [n["name"] for n in result["model"]["nodes"]]
    assert nasty("relu1\nsecond line") in names  # data, not markup: kept exactly
    assert result["model"]["producer"] == f"{nasty('producer')} {nasty('v')}"


def test_a_gate_names_a_node_by_its_whole_name(rendered):
    """A per-layer gate takes all before its operator and number as the path, so a node whose
    name holds spaces, operators and a newline can be gated (the audit above exits 0 with it)."""
    result = json.loads(rendered["json"])
    gate = next(g for g in result["gates"] if RELU in g["expr"])
    assert gate["expr"] == f"density.knots_per_layer.{RELU} < 0"
    assert gate["passed"] and gate["value"] == result["density"]["knots_per_layer"][RELU] > 0


def test_pdf_fetches_only_data_uris():
    pytest.importorskip("weasyprint", reason="WeasyPrint cannot be imported here (Pango missing)")
    from regionaudit.report import pdf

    fetch = pdf.url_fetcher()
    pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    got = fetch(pixel)
    data = got.read() if hasattr(got, "read") else got["string"]
    assert data.startswith(b"\x89PNG")
    for url in ("file:///etc/hostname", "http://127.0.0.1:9/x.css", "https://example.com/", "FILE:///etc/passwd"):
        with pytest.raises(ValueError):
            fetch(url)
    # a document that asks for files and hosts still renders, with nothing fetched
    doc = pdf.render_document(f'<p>x</p><img src="file:///etc/hostname"><img src="{pixel}">'
                              '<link rel="stylesheet" href="http://127.0.0.1:9/x.css">')
    assert len(doc.pages) == 1
