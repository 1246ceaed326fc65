"""The suite never reads or writes the folder it is started in: each test has its own tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, START_DIR, folder_entries, left_behind
from regionaudit.cli import main

CNN = ROOT / "sample_models" / "digits_cnn.onnx"
DIGITS = ROOT / "sample_models" / "digits_test.npy"


def test_each_test_starts_in_its_own_empty_folder(tmp_path):
    assert Path.cwd() == tmp_path
    assert Path.cwd() not in (ROOT, START_DIR)
    assert os.listdir(".") == []


def test_a_file_left_behind_is_found_even_when_git_ignores_it(tmp_path):
    folder = tmp_path / "clone"
    folder.mkdir()
    (folder / "kept.txt").write_text("x")
    before = {folder: folder_entries(folder)}
    assert left_behind(before) == []
    (folder / "digits_cnn.regionaudit.html").write_text("<html></html>")  # ignored by .gitignore
    assert left_behind(before) == [str(folder / "digits_cnn.regionaudit.html")]


def test_quick_start_report_lands_in_the_test_folder(tmp_path, capsys):
    """The README's first command writes its default report in the current folder; here that is
    the test's own folder, never the repository root that later tests would see."""
    in_root = ROOT / "digits_cnn.regionaudit.html"  # there after a user ran the quick start
    stamp = in_root.stat().st_mtime_ns if in_root.exists() else None
    data = tmp_path / "rows.npy"
    np.save(data, np.load(DIGITS)[:6])
    with pytest.raises(SystemExit) as exc:
        main([str(CNN), "--no-slice", "--data", str(data), "--pairs", "2", "--max-points", "2", "-q"])
    assert exc.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "digits_cnn.regionaudit.html").is_file()
    assert (in_root.stat().st_mtime_ns if in_root.exists() else None) == stamp
