"""``mediaserver init DIR``: a starter folder for those who installed the package alone.

The examples are the repository's ``configs/``: ``default.yaml`` and
``scenarios/*.yaml``. The wheel carries them as ``mediaserver/examples/``
(hatch ``force-include`` in pyproject.toml), so there is one copy in git;
a source checkout reads ``configs/`` itself.

The folder written::

    DIR/config.yaml      default.yaml with data_dir set, so it works from any folder
    DIR/scenarios/*.yaml the example scenarios (scenarios_dir: scenarios is already
                         relative to the config's folder)
    DIR/data/            database, recordings, cache and the API key go here

Nothing is overwritten unless ``force`` is given: every file that exists is
named in the refusal, and nothing is written then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

CONFIG_NAME = "config.yaml"
SCENARIOS = "scenarios"
DATA = "data"
DATA_DIR_LINE = re.compile(r"^# data_dir: \S+( *#.*)?$", re.MULTILINE)
"""The commented-out ``data_dir`` line of default.yaml that the starter config sets."""


class StarterError(Exception):
    """Why the starter folder cannot be written; nothing was written."""


@dataclass(frozen=True)
class Written:
    config: Path
    scenarios: list[Path]
    data: Path  # the data folder made


def examples() -> Traversable:
    """The folder holding ``default.yaml`` and ``scenarios/``."""
    packaged = resources.files("mediaserver") / "examples"
    if packaged.is_dir():
        return packaged
    # A source checkout (editable install, or run from the repository).
    source = Path(__file__).resolve().parents[1] / "configs"
    if (source / "default.yaml").is_file():
        return source
    raise StarterError(
        "the example config and scenarios are missing from this installation "
        "(mediaserver/examples); reinstall the mediaserver package"
    )


def starter_config(default_text: str, data_dir: str = ".") -> str:
    """``default.yaml`` with ``data_dir`` set (relative to the config's folder if relative)."""
    value = data_dir if re.fullmatch(r"[\w./-]+", data_dir) else _quoted(data_dir)
    line = f"data_dir: {value}".ljust(32) + "# database, recordings, cache, API key under data/"
    text, count = DATA_DIR_LINE.subn(line, default_text)
    if count != 1:  # default.yaml lost its "# data_dir:" line: a packaging bug, not the user's
        raise AssertionError(f"default.yaml has {count} '# data_dir:' lines, expected 1")
    first, _, rest = text.partition("\n")
    if first.startswith("# mediaserver default configuration"):
        text = rest
    return "# mediaserver configuration written by `mediaserver init`; edit freely.\n" + text


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_starter(folder: Path, *, force: bool = False, data_dir: Path | None = None) -> Written:
    """Write the starter config, scenarios and data folder into ``folder``.

    ``data_dir``: where the data folder goes instead of ``folder`` (written in
    the config as an absolute path)."""
    source = examples()
    scenarios = sorted(
        (item for item in (source / SCENARIOS).iterdir() if item.name.endswith((".yaml", ".yml"))),
        key=lambda item: item.name,
    )
    base = data_dir.resolve() if data_dir is not None else None
    config_text = starter_config(
        (source / "default.yaml").read_text(encoding="utf-8"),
        str(base) if base is not None else ".",
    )
    plan = {folder / CONFIG_NAME: config_text}
    for item in scenarios:
        plan[folder / SCENARIOS / item.name] = item.read_text(encoding="utf-8")
    existing = [path for path in plan if path.exists()]
    if existing and not force:
        names = "\n  ".join(str(path) for path in existing)
        raise StarterError(
            f"these files exist already:\n  {names}\n"
            "pass --force to overwrite them, or choose another folder"
        )
    for path in existing:
        if path.is_dir():
            raise StarterError(f"{path} is a folder; move it away, then run init again")
    data = (base or folder) / DATA
    try:
        (folder / SCENARIOS).mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        for path, text in plan.items():
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StarterError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return Written(
        config=folder / CONFIG_NAME,
        scenarios=[folder / SCENARIOS / item.name for item in scenarios],
        data=data,
    )
