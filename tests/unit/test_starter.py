"""`mediaserver init DIR` (mediaserver/starter.py): what it writes and what it refuses.

Running the written folder with real calls: tests/integration/test_deploy.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaserver import cli
from mediaserver.actions.check import check_files
from mediaserver.config import load_config
from mediaserver.starter import StarterError, examples, starter_config, write_starter

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "configs"
SCENARIO_NAMES = sorted(p.name for p in (EXAMPLES / "scenarios").glob("*.yaml"))


def test_a_source_checkout_takes_the_examples_from_configs() -> None:
    assert Path(str(examples())) == EXAMPLES


def test_the_starter_folder_runs_from_anywhere(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "voice"  # parents are made
    written = write_starter(folder)
    assert written.config == folder / "config.yaml"
    assert [p.name for p in written.scenarios] == SCENARIO_NAMES
    assert written.data == folder / "data" and written.data.is_dir()
    config = load_config(written.config)
    assert config.data_dir == folder
    assert config.scenarios_dir == folder / "scenarios"
    assert config.database_target() == folder / "data" / "mediaserver.db"
    assert config.routes == load_config(EXAMPLES / "default.yaml").routes
    assert check_files(written.scenarios) == []
    for name in SCENARIO_NAMES:
        assert (folder / "scenarios" / name).read_bytes() == (
            EXAMPLES / "scenarios" / name
        ).read_bytes()


def test_the_starter_config_is_the_default_with_data_dir_set() -> None:
    default = (EXAMPLES / "default.yaml").read_text()
    text = starter_config(default)
    assert text.startswith("# mediaserver configuration written by `mediaserver init`")
    assert "\ndata_dir: .  " in text and "\n# data_dir:" not in text
    # Everything else is the default's text, comments included.
    kept = [line for line in default.splitlines()[1:] if not line.startswith("# data_dir:")]
    assert [line for line in text.splitlines()[1:] if not line.startswith("data_dir:")] == kept


def test_a_data_dir_elsewhere_is_written_absolute(tmp_path: Path) -> None:
    data = tmp_path / "var lib" / "ms"  # a space: the value is quoted
    written = write_starter(tmp_path / "etc", data_dir=data)
    assert written.data == data / "data" and written.data.is_dir()
    assert not (tmp_path / "etc" / "data").exists()
    assert load_config(written.config).data_dir == data


def test_existing_files_are_named_and_nothing_is_written(tmp_path: Path) -> None:
    write_starter(tmp_path)
    (tmp_path / "config.yaml").write_text("mine\n")
    (tmp_path / "scenarios" / "ivr.yaml").unlink()
    with pytest.raises(StarterError) as info:
        write_starter(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "config.yaml") in message and "--force" in message
    assert str(tmp_path / "scenarios" / "ivr.yaml") not in message
    assert (tmp_path / "config.yaml").read_text() == "mine\n"
    assert not (tmp_path / "scenarios" / "ivr.yaml").exists()  # not even the missing ones
    write_starter(tmp_path, force=True)
    assert (tmp_path / "config.yaml").read_text() != "mine\n"
    assert (tmp_path / "scenarios" / "ivr.yaml").exists()


def test_a_folder_in_the_way_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").mkdir()
    with pytest.raises(StarterError, match=r"config\.yaml is a folder"):
        write_starter(tmp_path, force=True)


def test_init_command_prints_what_it_wrote_and_the_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["init", str(tmp_path / "voice")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"wrote {tmp_path / 'voice' / 'config.yaml'}"
    assert f"made {tmp_path / 'voice' / 'data'}/" in out
    assert out[-1] == f"next: mediaserver run --config {tmp_path / 'voice' / 'config.yaml'}"
    assert cli.main(["init", str(tmp_path / "voice")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mediaserver init: these files exist already:")
    assert cli.main(["check", "--config", str(tmp_path / "voice" / "config.yaml")]) == 0
