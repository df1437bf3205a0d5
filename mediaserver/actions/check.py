"""``mediaserver check FILE...``: validate scenario files without running them.

Each file is loaded exactly as the server would load it, and every problem
of every file is returned, file by file in the order given and by position
within a file, ready to print as
``FILE:LINE:COL: message``. The command exits 0 when the list is empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from mediaserver.actions.scenario import load_scenario
from mediaserver.yamlsource import Problem, ProblemsError


def check_files(paths: Iterable[str | os.PathLike[str]]) -> list[Problem]:
    """Every problem in ``paths``; an empty list means all files are valid scenarios."""
    problems: list[Problem] = []
    for path in paths:
        try:
            load_scenario(path)
        except ProblemsError as exc:
            problems.extend(exc.problems)
    return problems
