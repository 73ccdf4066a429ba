import shlex

import pytest

from planner.cli import main


def run(args, capsys=None, env=None, monkeypatch=None):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    if isinstance(args, str):
        args = shlex.split(args)
    if capsys is not None:
        capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return exc.value.code, out, err
