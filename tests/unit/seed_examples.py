"""The seeds' own examples, extracted from their text (``../shared/seeds``).

The Voxology seed (``003``) prints each Call Flow answer as a JSON block
starting on a line of its own with ``{`` or ``[``; the Callr seed (``001``)
gives scenario scripts as the ``"script"`` string of its request and
response samples, with the text's runs of spaces collapsed to one. The
examples are kept in ``tests/unit/data/seeds/`` so the tests run without the
seeds; :func:`callflow_examples` rebuilds that file from the seed's text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "seeds"
CALLFLOW_FILE = DATA / "callflow_003.json"
_REPO = Path(__file__).resolve().parents[2]
SEED_DIRS = [_REPO.parent / "shared" / "seeds", _REPO.parent.parent / "shared" / "seeds"]
"""Where the seeds are: beside the checkout (``../shared/seeds``), or beside the
folder of worktrees."""

ACTION_TYPES = frozenset(
    {
        "COLLECT", "CONFERENCE", "DETECT", "DIAL", "FOREACH", "GOTO", "HANGUP", "IF", "LABEL",
        "PAUSE", "PLAY", "QUEUE", "RECORD", "RECORDMESSAGE", "REDIRECT", "REJECT", "SAY",
        "SESSIONDATA", "SMS", "STOP", "TRANSFER", "WEBHOOK",
    }
)  # fmt: skip
"""seeds/003, "Action Types": the types an action may have."""

_MAX_BLOCK_LINES = 400


# seeds/001, "Create scenario" (and the other scenario samples): the script as the seed's
# text shows it, every run of spaces collapsed to one. As printed it is not the YAML it
# was (two "actions:" at one level), so it is read with its indentation back.
CALLR_SCRIPT_AS_PRINTED = (
    "defaults:\n language: en-US\n\nbranches:\n inbound-call:\n actions:\n - action: log@v1\n"
    " params:\n message: Hello inbound call\n\n inbound-sms:\n actions:\n - action: log@v1\n"
    " params:\n message: Hello inbound sms\n\n api-initiated:\n actions:\n - action: log@v1\n"
    " params:\n message: Hello from API\n"
)
CALLR_SCRIPT = """\
defaults:
  language: en-US

branches:
  inbound-call:
    actions:
      - action: log@v1
        params:
          message: Hello inbound call

  inbound-sms:
    actions:
      - action: log@v1
        params:
          message: Hello inbound sms

  api-initiated:
    actions:
      - action: log@v1
        params:
          message: Hello from API
"""


def seed_file(prefix: str) -> Path | None:
    """The seed whose name starts with ``prefix`` (``003_``), when it is reachable."""
    for folder in SEED_DIRS:
        found = sorted(folder.glob(f"{prefix}*.txt")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def is_call_flow(value: Any) -> bool:
    """A Call Flow answer: ``{"actions": [...]}``, one action, or a list of actions."""
    if isinstance(value, dict):
        return isinstance(value.get("actions"), list) or value.get("type") in ACTION_TYPES
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get("type") in ACTION_TYPES for item in value)
    )


def callflow_examples(text: str) -> list[dict[str, Any]]:
    """Every Call Flow answer printed in the seed: its line, the title of the example
    it is under (``Example Response // Async Transfer``) and the JSON."""
    lines = text.split("\n")
    examples: list[dict[str, Any]] = []
    title = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("Example"):
            title = line.strip()
        if line in ("{", "["):
            end, value = _json_block(lines, index)
            if end is not None:
                if is_call_flow(value):
                    examples.append({"line": index + 1, "title": title, "json": value})
                index = end
        index += 1
    return examples


def _json_block(lines: list[str], start: int) -> tuple[int | None, Any]:
    """The JSON value starting at ``lines[start]`` and its last line, or (None, None)."""
    for end in range(start, min(len(lines), start + _MAX_BLOCK_LINES)):
        try:
            return end, json.loads("\n".join(lines[start : end + 1]))
        except ValueError:
            continue
    return None, None


def load_callflow_examples() -> list[dict[str, Any]]:
    examples: list[dict[str, Any]] = json.loads(CALLFLOW_FILE.read_text(encoding="utf-8"))
    return examples


if __name__ == "__main__":  # rebuild the data file: python tests/unit/seed_examples.py
    seed = seed_file("003_")
    assert seed is not None, f"no seed 003 in {SEED_DIRS}"
    found = callflow_examples(seed.read_text(encoding="utf-8"))
    CALLFLOW_FILE.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    print(f"{CALLFLOW_FILE}: {len(found)} examples")
