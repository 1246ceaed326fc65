"""Running the command line inside a test: `main` as a user's shell calls it, with the exit code,
stdout and stderr it gave."""

from __future__ import annotations

import pytest

from regionaudit.cli import main


def run(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err
