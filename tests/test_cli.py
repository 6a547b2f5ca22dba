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
        "import sys\nfrom bench.cli import COMMANDS, main\nfrom bench.perf.command import TARGETS\n"
        "for name in list(COMMANDS) + ['perf ' + target for target in TARGETS]:\n"
        "    try:\n        main(name.split() + ['--help'])\n    except SystemExit:\n        pass\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_sizes_parse_in_one_place_with_squares_and_clear_errors():
    from data.sizes import parse_dims, parse_size

    assert parse_size("512x1024") == (512, 1024) and parse_size("512") == (512, 512)
    assert parse_size("256X512") == (256, 512)
    assert parse_dims("8x256x512", 3, "8x256x256") == (8, 256, 512)
    for bad in ("0x64", "x", "1x2x3", "abc", "-1x5", ""):
        with pytest.raises(ValueError, match="HEIGHTxWIDTH"):
            parse_size(bad)


def test_scales_apply_to_multiscale_only_and_default_to_pspnets_six():
    from data.errors import UserError
    from models.inference_modes import DEFAULT_SCALES, scales_for

    assert scales_for("whole", None) == (1.0,) and scales_for("slide", None) == (1.0,)
    assert scales_for("multiscale", None) == DEFAULT_SCALES and len(DEFAULT_SCALES) == 6
    assert scales_for("multiscale", (0.5, 1.0)) == (0.5, 1.0)
    with pytest.raises(UserError, match="multiscale only"):
        scales_for("whole", (0.5,))


@pytest.mark.parametrize("command", ["predict", "run", "submit"])
def test_scales_without_multiscale_are_refused_by_every_command(command, tmp_path, capsys):
    argv = {
        "predict": ["predict", "--checkpoint", str(tmp_path / "c.keras"), "--out", str(tmp_path / "o")],
        "run": ["run", "--no-readme"],
        "submit": ["submit", "--checkpoint", str(tmp_path / "c.keras"), "--out", str(tmp_path / "s.zip")],
    }[command]
    assert main([*argv, "--scales", "0.5,1.0"]) == 2
    assert "--scales applies to --mode multiscale only" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "s.zip").exists()
