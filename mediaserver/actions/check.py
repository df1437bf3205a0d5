"""``mediaserver check FILE...``: validate scenario files without running them.

Each file is loaded exactly as the server would load it, and every problem
of every file is returned, file by file in the order given and by position
within a file, ready to print as
``FILE:LINE:COL: message`` (``FILE:LINE:COL: warning: message`` for a likely
mistake that does not stop the file from loading, such as a variable an
``api-initiated`` branch reads that only the run's start may pass). The
command exits 0 when there is no problem other than warnings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from mediaserver.actions.scenario import load_scenario
from mediaserver.yamlsource import Problem, ProblemsError


def check_files(paths: Iterable[str | os.PathLike[str]]) -> list[Problem]:
    """Every problem in ``paths``, warnings included (``Problem.warning``): the files
    are valid scenarios when every problem is a warning."""
    problems: list[Problem] = []
    for path in paths:
        try:
            found = list(load_scenario(path).warnings)
        except ProblemsError as exc:
            found = [*exc.problems, *exc.warnings]
        problems.extend(sorted(found, key=lambda p: p.mark))
    return problems
