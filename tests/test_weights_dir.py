"""Where published weights are looked for: --weights-dir on run, predict and submit, else the folder a
user set once ($CITYSCAPES_BENCH_WEIGHTS), else checkpoints/weights/; what a missing checkpoint says."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.sources import download
from data.errors import UserError
from tests.shared_files import shared_file

ESPNET = "espnet_p2-q8_cityscapes-1024x512"


def test_the_weights_folder_set_once_is_where_a_weights_name_is_found(monkeypatch):
    path = shared_file(
        "weights/espnet_p_2_q_8.pth", "https://github.com/sacmehta/ESPNet (pretrained/decoder)"
    )
    monkeypatch.setenv(download.WEIGHTS_ENV, str(path.parent))
    assert download.default_weights_dir() == path.parent
    assert download.checkpoint_or_weights(ESPNET, None) == str(path)
    monkeypatch.delenv(download.WEIGHTS_ENV)
    assert download.checkpoint_or_weights(ESPNET, path.parent) == str(path)  # --weights-dir DIR
    assert download.default_weights_dir() == download.WEIGHTS_ROOT


def test_weights_dir_with_a_checkpoint_file_is_refused():
    with pytest.raises(UserError, match="--weights-dir is where a published weights name is looked for"):
        download.checkpoint_or_weights("model.keras", "somewhere")


@pytest.mark.parametrize("command", ["predict", "submit"])
def test_predict_and_submit_take_weights_dir(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--weights-dir DIR" in capsys.readouterr().out


def test_a_missing_checkpoint_names_every_kind_of_checkpoint(tmp_path, capsys):
    argv = ["predict", "--checkpoint", str(tmp_path / "nope.pth"), "--dataset", str(tmp_path), "--out"]
    (tmp_path / "leftImg8bit" / "val" / "c").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (64, 32)).save(
        tmp_path / "leftImg8bit" / "val" / "c" / "c_000000_000001_leftImg8bit.png"
    )
    assert main([*argv, str(tmp_path / "p"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    for kind in (".keras file", "training --out folder", ".pth", ".tflite", "published weights name"):
        assert kind in err, kind
