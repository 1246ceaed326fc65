"""JUnit XML for gates (`--junit gates.xml`), so CI systems show each gate as a test case.

One <testsuite> inside <testsuites>, one <testcase> per gate, a <failure> for each failed gate.
Built with ElementTree, so every attribute and text is escaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from regionaudit.result import GateResult

# Characters XML 1.0 cannot hold at all (escaping does not help); replaced before writing.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def junit_xml(gates: list[GateResult], suite_name: str = "regionaudit") -> str:
    """A JUnit XML document (as text, with an XML declaration) for these gate results."""
    failures = sum(1 for g in gates if not g.passed)
    counts = {"tests": str(len(gates)), "failures": str(failures), "errors": "0", "skipped": "0"}
    root = ET.Element("testsuites", {"name": _clean(suite_name), **counts})
    suite = ET.SubElement(root, "testsuite", {"name": _clean(suite_name), **counts})
    for g in gates:
        case = ET.SubElement(suite, "testcase", {"classname": _clean(f"{suite_name}.gates"), "name": _clean(g.expr)})
        if not g.passed:
            failure = ET.SubElement(
                case,
                "failure",
                {"message": _clean(g.message or f"gate failed: {g.expr}"), "type": "GateFailed"},
            )
            value = "null" if g.value is None else repr(g.value)
            failure.text = _clean(f"{g.message}\nvalue: {value}")
        elif g.message:
            out = ET.SubElement(case, "system-out")
            out.text = _clean(g.message)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

