"""The `python -m bench` entry point: every command and perf target builds its parser without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.cli import COMMANDS, main
from bench.perf.command import TARGETS


@pytest.mark.parametrize(
    "argv", [[name, "--help"] for name in COMMANDS] + [["perf", target, "--help"] for target in TARGETS]
)
def test_every_command_prints_its_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: python -m bench" in capsys.readouterr().out


def test_no_command_prints_the_command_list_and_fails(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_help_of_every_command_leaves_tensorflow_unimported():
    code = (
        "import sys\nfrom bench.cli import COMMANDS, main\n"
        "for name in list(COMMANDS) + ['perf eval', 'perf model', 'perf pipeline', 'perf train']:\n"
        "    try:\n        main(name.split() + ['--help'])\n    except SystemExit:\n        pass\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
