"""What the CLI tells a person: synthetic probes, help, hints and notes."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from conftest import ROOT
from regionaudit.cli import main

SAMPLES = ROOT / "sample_models"
CNN = SAMPLES / "digits_cnn.onnx"
MLP = SAMPLES / "digits_mlp.onnx"
DIGITS = SAMPLES / "digits_test.npy"


def run(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_synthetic_probes_are_said_first_and_once(tmp_path, capsys):
    model = tmp_path / "R&D <b>net &amp; co.onnx"  # a name a Markdown card must keep inert
    shutil.copy(MLP, model)
    report, card = tmp_path / "r.html", tmp_path / "card.md"
    code, out, err = run([model, "--pairs", 4, "--max-points", 3, "-o", report, "--card", card, "-q"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("SYNTHETIC PROBES: no data was given")
    html = report.read_text()
    assert html.count("Synthetic probes.") == 1
    assert html.count("not the model&#39;s data") + html.count("not the model's data") == 0  # not again as a note
    md = card.read_text()
    assert md.count("Synthetic probes") == 1 and md.count("no data was given") == 1
    assert "near the data" not in md and "data point" not in md
    assert "R&D \\<b\\>net \\&amp; co.onnx" in md  # backslash escapes, literal &
    assert not re.search(r"&(#\d+|[a-z]+);", md.replace("\\&amp;", ""))


def test_real_data_gets_no_synthetic_banner(tmp_path, capsys):
    data = tmp_path / "rows.npy"
    np.save(data, np.load(DIGITS)[:8])
    report, card = tmp_path / "r.html", tmp_path / "card.md"
    code, out, err = run([MLP, "--data", data, "--pairs", 3, "--max-points", 2, "-o", report, "--card", card, "-q"], capsys)
    assert code == 0, err
    assert not out.startswith("SYNTHETIC") and "Synthetic probes" not in report.read_text()
    assert "Synthetic" not in card.read_text() and "near the data" in card.read_text()
