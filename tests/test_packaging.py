"""The wheel holds every subpackage and the templates, so a non-editable install works."""

import re
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^packages = \[(.*?)\]", text, re.S | re.M).group(1)
    listed = set(re.findall(r'"([\w.]+)"', block))
    found = set(find_packages(ROOT, include=["regionaudit*"])) | {"regionaudit.templates"}
    assert listed == found


def test_templates_are_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"regionaudit.templates" = "templates"', text)
    shipped = {p.suffix for p in (ROOT / "templates").iterdir() if p.is_file() and p.name != "__init__.py"}
    patterns = set(re.findall(r'"\*(\.\w+)"', text))
    assert shipped <= patterns, shipped - patterns
