"""Model-card Markdown: content, escaping, and in-place updates of an existing README."""

from __future__ import annotations

import os
import re

import pytest

from regionaudit.errors import BadOption
from regionaudit.outputs import OutputRequest, write_outputs
from regionaudit.report.card import END, START, render_card
from fake_results import empty_result, max_knots_note, nasty_result, sample_result, truncated_result


@pytest.fixture(scope="module")
def result():
    return sample_result(n_segments=20, n_points=20)


def write_card(result, path, report=None):
    """`--card PATH` as the CLI writes it, beside a report named `report` in the same folder."""
    write_outputs(result, [OutputRequest("card", path, report and path.parent / report)])


def append_card(result, readme, report=None):
    """`--card-append README` as the CLI writes it."""
    write_outputs(result, [OutputRequest("card-append", readme, report and readme.parent / report)])


def table_rows(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def cells(row: str) -> list[str]:
    """Split a GFM table row on unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_card_content(result, tmp_path):
    out = tmp_path / "card.md"
    write_card(result, out, "mnist_mlp.regionaudit.html")
    md = out.read_text(encoding="utf-8")
    assert md.startswith(START + "\n") and md.endswith(END + "\n")
    assert "## Linear-region audit (regionaudit)" in md
    assert "| Metric | Value | What it means |" in md
    assert "Regions per segment" in md and "Boundary distance" in md and "Absolute deviation" in md
    assert "[mnist\\_mlp.regionaudit.html](<mnist_mlp.regionaudit.html>)" in md
    assert "used as given" in md
    assert "| Gate | Value | Result |" in md and "FAIL" in md
    for row in table_rows(md):
        assert len(cells(row)) == 3, row


def test_card_without_link_or_gates():
    r = sample_result(n_segments=5, n_points=5, with_gates=False)
    md = render_card(r, None)
    assert "Full report" not in md
    assert "| Gate |" not in md


def test_card_empty_result():
    md = render_card(empty_result(), None)
    assert "undefined" in md
    assert "seeded Gaussian" in md
    assert "nan" not in md.lower().split()


def test_card_max_knots_note_once():
    """The card repeats the audit's --max-knots note once and adds none of its own."""
    r = truncated_result(max_knots=64)
    md = render_card(r, None)
    assert md.count(max_knots_note(64)) == 1
    assert md.count("--max-knots") == sum(n.count("--max-knots") for n in r.notes)  # none invented


def test_card_escapes_model_strings():
    md = render_card(nasty_result(), "reports/x y).html")
    ours = md.replace(START, "").replace(END, "").replace("(<reports/x%20y%29.html>)", "")
    assert not re.search(r"(?<!\\)[<>]", ours)  # every angle bracket escaped: no raw HTML, no autolink
    assert "\\<script\\>alert(1)\\</script\\>" in md  # the text itself, readable in the source
    assert not re.search(r"&(#\d+|[a-z]+);", md)  # Markdown escapes, never HTML entities like &amp;
    assert not re.search(r"(?<!\\)\]\((?!<reports)", md)  # no link but ours
    assert "http://" not in md and "https://" not in md  # no autolinks either
    assert "a\\|b\\*\\_c\\_\\[x\\]" in md
    for row in table_rows(md):
        n = len(cells(row))
        assert n == 3, row
    # a note with a newline stays one list item; a note starting with # is no heading
    assert "\\# not a heading" in md
    assert not re.search(r"^#(?!#)", md, re.M)
    assert "(<reports/x%20y%29.html>)" in md


def test_card_refuses_script_links(result):
    with pytest.raises(BadOption):
        render_card(result, "javascript:alert(1)")


def test_append_creates_missing_file(result, tmp_path):
    readme = tmp_path / "README.md"
    append_card(result, readme, None)
    assert readme.read_text(encoding="utf-8") == render_card(result, None)


def test_append_to_existing_twice_is_idempotent(result, tmp_path):
    readme = tmp_path / "README.md"
    original = "---\nlicense: mit\ntags:\n- relu\n---\n\n# My model\n\nSome text.\n"
    readme.write_text(original, encoding="utf-8")
    append_card(result, readme, "r.html")
    once = readme.read_bytes()
    append_card(result, readme, "r.html")
    assert readme.read_bytes() == once
    text = once.decode()
    assert text.startswith(original)  # front matter and body untouched
    assert text == original + "\n" + render_card(result, "r.html")
    assert text.count(START) == 1 and text.count(END) == 1


@pytest.mark.parametrize("tail", ["", "\n", "\n\n", "\n\n\n"])
def test_append_separates_with_one_blank_line(result, tmp_path, tail):
    readme = tmp_path / "README.md"
    readme.write_text("# Model" + tail, encoding="utf-8")
    append_card(result, readme, None)
    text = readme.read_text(encoding="utf-8")
    section = render_card(result, None)
    assert text.endswith(section)
    head = text[: -len(section)]
    assert head == "# Model" + tail + "\n" * max(0, 2 - len(tail))  # existing bytes kept, >= 1 blank line


def test_replace_keeps_surrounding_bytes_crlf(result, tmp_path):
    readme = tmp_path / "README.md"
    before = b"---\r\nlicense: apache-2.0\r\n---\r\n\r\n# Model\r\n\r\n"
    after = b"\r\n\r\n## Citation\r\n\r\ntrailing text without newline"
    old = (START + "\r\nold section\r\n" + END).encode()
    readme.write_bytes(before + old + after)
    append_card(result, readme, "report.html")
    data = readme.read_bytes()
    assert data.startswith(before) and data.endswith(after)
    middle = data[len(before) : -len(after)]
    assert middle.startswith(START.encode()) and middle.endswith(END.encode())
    assert b"old section" not in middle
    assert b"\n" not in middle.replace(b"\r\n", b"")  # the section took the file's CRLF endings
    append_card(result, readme, "report.html")
    assert readme.read_bytes() == data


def test_replace_with_changed_result(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n", encoding="utf-8")
    append_card(sample_result(n_segments=10, n_points=5, seed=1), readme, None)
    append_card(sample_result(n_segments=10, n_points=5, seed=2), readme, None)
    text = readme.read_text(encoding="utf-8")
    assert text == "intro\n\n" + render_card(sample_result(n_segments=10, n_points=5, seed=2), None)


def test_markers_in_front_matter_are_ignored(result, tmp_path):
    readme = tmp_path / "README.md"
    original = f"---\ndescription: see {START} and {END}\n---\nbody\n"
    readme.write_text(original, encoding="utf-8")
    append_card(result, readme, None)
    assert readme.read_text(encoding="utf-8").startswith(original)


def test_unpaired_marker_is_refused(result, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"text\n{START}\nno end\n", encoding="utf-8")
    with pytest.raises(BadOption, match="without its pair"):
        append_card(result, readme, None)
    assert readme.read_text(encoding="utf-8") == f"text\n{START}\nno end\n"


@pytest.mark.parametrize("quoted", [
    "The card is kept between `{START}` and `{END}`; do not delete me.\n",
    "```markdown\n{START}\nan example section\n{END}\n```\n",
    "~~~~\n{START}\n```\n{END}\n~~~~\n",
    "    {START}\n    an indented code block\n    {END}\n",
])
def test_markers_quoted_in_prose_or_code_are_left_alone(result, tmp_path, quoted):
    """Only a marker on a line of its own, outside code, marks the section: before, markers quoted
    in a sentence or a code example were taken as the section and the new one spliced in there."""
    readme = tmp_path / "README.md"
    quoted = quoted.format(START=START, END=END)
    readme.write_text(f"# Model\n\n{quoted}\nMore text.\n\n{START}\nold section\n{END}\n\n## Citation\n", encoding="utf-8")
    append_card(result, readme, None)
    assert readme.read_text(encoding="utf-8") == (f"# Model\n\n{quoted}\nMore text.\n\n" + render_card(result, None).rstrip("\n")
                                                  + "\n\n## Citation\n")


@pytest.mark.parametrize("tail", ["```\npip install foo\n", "``` a`b\nnot a fence: a backtick in its info string\n"])
def test_a_fence_left_open_at_the_end_does_not_hide_the_section(result, tmp_path, tail):
    """The section appended after a fence that never closes (or after a line that only looks like
    a fence) is found again: before, every run appended another copy."""
    readme = tmp_path / "README.md"
    readme.write_text("# My model\n\n" + tail, encoding="utf-8")
    for _ in range(2):
        append_card(result, readme, None)
    text = readme.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.startswith("# My model\n\n" + tail)


def test_an_end_marker_before_its_start_is_refused_as_such(result, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"text\n{END}\nmiddle\n{START}\n", encoding="utf-8")
    with pytest.raises(BadOption, match="an end marker before its start marker"):
        append_card(result, readme, None)


def test_non_utf8_bytes_and_mode_kept(result, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_bytes(b"caf\xe9 latin-1 text\n")
    os.chmod(readme, 0o644)
    append_card(result, readme, None)
    data = readme.read_bytes()
    assert data.startswith(b"caf\xe9 latin-1 text\n\n")
    assert (readme.stat().st_mode & 0o777) == 0o644


def test_loops_and_a_slice_that_were_stopped_are_marked_in_the_card():
    """The card marked segments cut short but not loops (--max-knots) or a slice (--max-regions):
    their counts read as final."""
    from dataclasses import replace

    r = sample_result(n_segments=10, n_points=5)
    assert r.density.paths
    r.density.paths[0] = replace(r.density.paths[0], truncated=True)
    r.slice = replace(r.slice, truncated=True)
    rows = {line.split(" | ")[0].strip("| "): line for line in render_card(r).splitlines() if line.startswith("| ")}
    assert "a lower bound: loops were cut short" in rows["Regions per translation loop"]
    assert f"{r.slice.regions:,} (a lower bound: the slice stopped at --max-regions)" in rows["Regions in the 2-D slice"]
    assert "of an unfinished partition" in rows["Slice decision boundary length"]
    values = [line.split(" | ")[1] for line in render_card(sample_result(n_segments=10, n_points=5)).splitlines()
              if line.startswith("| ")]
    assert not any("lower bound" in v or "unfinished" in v for v in values)
