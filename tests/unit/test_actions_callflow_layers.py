"""The direction between ``mediaserver.actions`` and ``mediaserver.callflow``, read with ``ast``.

``callflow`` is a client of the action language (model, definition,
expressions, variables, the interpreter): it never imports the scenario
compiler, the registry, the runner or the builtins, at module level or inside
a function; it is handed the compiler (``ServerApi.compile_scenario``).
``actions`` reaches ``callflow`` at one place only, the registration point
``actions/builtin/callflow.py`` that makes the loop the ``callflow@v1`` action.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mediaserver"

CALLFLOW_MAY_NOT_IMPORT = (
    "mediaserver.actions.scenario",
    "mediaserver.actions.registry",
    "mediaserver.actions.runner",
    "mediaserver.actions.check",
    "mediaserver.actions.reference",
    "mediaserver.actions.builtin",
)
REGISTRATION_POINT = PACKAGE / "actions" / "builtin" / "callflow.py"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            # "from mediaserver.actions import registry" imports the submodule.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_callflow_uses_the_action_language_but_not_the_compiler_or_the_registry() -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / "callflow").rglob("*.py"))
        for module in sorted(imported_modules(path))
        if any(_within(module, banned) for banned in CALLFLOW_MAY_NOT_IMPORT)
    ]
    assert offences == []


def test_actions_reach_callflow_only_through_the_registration_point() -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / "actions").rglob("*.py"))
        if path != REGISTRATION_POINT
        for module in sorted(imported_modules(path))
        if _within(module, "mediaserver.callflow")
    ]
    assert offences == []
    assert any(
        _within(module, "mediaserver.callflow") for module in imported_modules(REGISTRATION_POINT)
    )


def test_the_import_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "def f() -> None:\n"
        "    from mediaserver.actions import scenario\n"
        "    import mediaserver.actions.registry\n"
    )
    assert {"mediaserver.actions.scenario", "mediaserver.actions.registry"} <= imported_modules(
        source
    )


def test_each_side_imports_first_without_a_cycle() -> None:
    # A fresh interpreter per order: a module-level cycle fails in one of them.
    for first in ("mediaserver.callflow.loop", "mediaserver.actions.registry"):
        done = subprocess.run(
            [sys.executable, "-c", f"import {first}"],
            cwd=PACKAGE.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
