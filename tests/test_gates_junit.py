"""JUnit XML for gate results."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from regionaudit.errors import BadOption
from regionaudit.gates.junit import junit_xml
from regionaudit.outputs import OutputRequest, write_outputs
from regionaudit.result import GateResult

from fake_results import empty_result

GATES = [
    GateResult("density.summary.median > 200", 231, False, "FAIL density.summary.median > 200: value 231"),
    GateResult("distance.summary.median < 1e-4", 0.5, True, "pass distance.summary.median < 1e-4: value 0.5"),
    GateResult("deviation.spearman_density > 0.9", None, False,
               "FAIL deviation.spearman_density > 0.9: metric deviation.spearman_density is undefined (null)"),
]


def test_counts_and_cases():
    root = ET.fromstring(junit_xml(GATES))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "2", "0")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "regionaudit"
    assert (suite.get("tests"), suite.get("failures")) == ("3", "2")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g.expr for g in GATES]
    failures = [c.find("failure") for c in cases]
    assert failures[1] is None
    assert failures[0].get("message") == GATES[0].message
    assert "value: 231" in failures[0].text
    assert "undefined (null)" in failures[2].get("message")
    assert "value: null" in failures[2].text
    assert cases[1].find("system-out").text == GATES[1].message


def test_escaping_and_invalid_characters():
    g = GateResult('a < 1 & "b" > <c>', 2.0, False, "FAIL <&> \"quoted\" 'single' \x00\x07 ünïcode")
    text = junit_xml([g], suite_name="my <suite> & co")
    root = ET.fromstring(text)  # parses: everything escaped
    case = root.find("testsuite/testcase")
    assert case.get("name") == 'a < 1 & "b" > <c>'
    assert root.get("name") == "my <suite> & co"
    msg = case.find("failure").get("message")
    assert msg.startswith("FAIL <&> \"quoted\" 'single' ") and msg.endswith(" ünïcode")
    assert "\x00" not in msg and "\x07" not in msg


def test_no_gates():
    root = ET.fromstring(junit_xml([]))
    assert (root.get("tests"), root.get("failures")) == ("0", "0")
    assert root.findall("testsuite/testcase") == []


def test_all_pass():
    root = ET.fromstring(junit_xml([GATES[1]], suite_name="ci"))
    assert root.get("failures") == "0" and root.find("testsuite").get("name") == "ci"


def _with_gates(gates):
    result = empty_result()
    result.gates = gates
    return result


def test_write_junit(tmp_path):
    p = tmp_path / "gates.xml"
    write_outputs(_with_gates(GATES), [OutputRequest("junit", p)])
    text = p.read_text(encoding="utf-8")
    assert text.startswith("<?xml")
    assert ET.parse(p).getroot().get("failures") == "2"
    assert [q.name for q in tmp_path.iterdir()] == ["gates.xml"]  # no temporary file left


def test_write_junit_missing_folder(tmp_path):
    with pytest.raises(BadOption):
        write_outputs(_with_gates(GATES), [OutputRequest("junit", tmp_path / "nope" / "gates.xml")])
