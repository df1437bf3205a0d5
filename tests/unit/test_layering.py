"""`sip/` is the bottom layer: it imports nothing from the layers built on it.

Every import statement of every ``mediaserver/sip`` module is read with
``ast`` (nothing is imported, so the check cannot be fooled by import order),
including imports inside functions and inside ``if TYPE_CHECKING:`` blocks.
Type-only imports count: a SIP module that names ``Call`` in an annotation
depends on what a call is, and the package is meant to be a leaf that the
call layer uses, not one that knows it (issue 17).

A SIP module may import other ``mediaserver.sip`` modules and the
foundation below every layer (:data:`FOUNDATION`); anything else of
``mediaserver`` is a layer above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "mediaserver"
SIP = PACKAGE_ROOT / "sip"

# Modules below every layer: logging, and the typed config every layer reads.
FOUNDATION = frozenset(("mediaserver.log", "mediaserver.config"))


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(path: Path, root: Path = PACKAGE_ROOT) -> set[str]:
    """Every ``mediaserver`` module ``path`` (a file under ``root``) imports, anywhere in it."""
    importer = _module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):  # walks into functions and TYPE_CHECKING blocks too
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, importer, path.name == "__init__.py")
            found.add(module)
            # ``from mediaserver import calls`` imports the module mediaserver.calls
            found.update(
                f"{module}.{alias.name}"
                for alias in node.names
                if _is_module(f"{module}.{alias.name}", root)
            )
    return {m for m in found if m == "mediaserver" or m.startswith("mediaserver.")}


def _is_module(name: str, root: Path) -> bool:
    target = root.joinpath(*name.split(".")[1:])
    return name.startswith("mediaserver.") and (
        target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()
    )


def upward_layers(path: Path) -> set[str]:
    """The layers above sip/ that ``path`` imports, by top-level name (``calls``...)."""
    layers = set()
    for module in imported_modules(path):
        if module == "mediaserver":
            continue  # the package root: only __version__
        if module == "mediaserver.sip" or module.startswith("mediaserver.sip."):
            continue
        if module in FOUNDATION:
            continue
        layers.add(module.split(".")[1])
    return layers


SIP_MODULES = sorted(SIP.glob("*.py"))


@pytest.mark.parametrize("path", SIP_MODULES, ids=lambda p: p.name)
def test_sip_modules_import_no_layer_above(path: Path) -> None:
    extra = upward_layers(path)
    assert not extra, (
        f"mediaserver/sip/{path.name} imports {', '.join(sorted(extra))}: sip/ is the bottom "
        "layer; pass what it needs in (a protocol or a callback) from the layer above"
    )


def test_the_foundation_imports_no_layer() -> None:
    """What sip/ may import must not reach up itself, or sip/ would through it."""
    for module in FOUNDATION:
        path = PACKAGE_ROOT / f"{module.split('.')[1]}.py"
        reached = {m.split(".")[1] for m in imported_modules(path) if m != "mediaserver"}
        # database_url: a leaf that imports nothing of mediaserver (what storage.database names).
        allowed = {"log", "config", "yamlsource", "yamllimits", "database_url"}
        assert reached <= allowed, (module, reached)


def test_every_form_of_import_is_seen(tmp_path: Path) -> None:
    (tmp_path / "mediaserver" / "calls").mkdir(parents=True)
    (tmp_path / "mediaserver" / "calls" / "__init__.py").write_text("")
    (tmp_path / "mediaserver" / "journal.py").write_text("")
    source = "\n".join(
        [
            "from __future__ import annotations",
            "from typing import TYPE_CHECKING",
            "import mediaserver.media.leg",
            "from mediaserver import journal",
            "if TYPE_CHECKING:",
            "    from mediaserver.api.app import App",
            "def later():",
            "    from ..store import Store",
            "    from ..calls import Call",
            "    from .message import Request",
        ]
    )
    path = tmp_path / "mediaserver" / "sip" / "example.py"
    path.parent.mkdir()
    path.write_text(source)
    found = imported_modules(path, tmp_path / "mediaserver")
    assert found == {
        "mediaserver",  # from mediaserver import journal
        "mediaserver.media.leg",
        "mediaserver.journal",
        "mediaserver.api.app",
        "mediaserver.store",
        "mediaserver.calls",
        "mediaserver.sip.message",
    }


# The parts of a call see it through the protocols they define (calls/base.py
# composes them), so none may import the call classes themselves.
CALL_PARTS = ("digits", "run_owner", "renegotiation", "session_link", "session_driver", "channel")
CALL_CLASSES = frozenset(
    ("mediaserver.calls", "mediaserver.calls.base", "mediaserver.calls.inbound",
     "mediaserver.calls.outbound")
)  # fmt: skip


@pytest.mark.parametrize("part", CALL_PARTS)
def test_call_parts_do_not_import_the_call(part: str) -> None:
    path = PACKAGE_ROOT / "calls" / f"{part}.py"
    reached = imported_modules(path) & CALL_CLASSES
    assert not reached, (
        f"mediaserver/calls/{part}.py imports {', '.join(sorted(reached))}: a part of a call "
        "names what it needs of the call in a Protocol of its own"
    )


def _server_attribute_assignments(path: Path) -> list[int]:
    """Lines of ``path`` that assign an attribute of the server (``server.x = ...``,
    ``server_of(request).x = ...``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if not isinstance(target, ast.Attribute):
                continue
            owner = target.value
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name):
                owner = owner.func
            if isinstance(owner, ast.Name) and owner.id in ("server", "server_of"):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", sorted((PACKAGE_ROOT / "api").glob("*.py")), ids=lambda p: p.name)
def test_the_api_changes_the_server_only_through_its_services(path: Path) -> None:
    lines = _server_attribute_assignments(path)
    assert not lines, (
        f"mediaserver/api/{path.name} lines {lines} assign an attribute of the server: reach "
        "the service through a protocol of mediaserver/api/deps.py instead"
    )


def test_a_server_attribute_assignment_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "routes.py"
    path.write_text("server.webhook_targets = []\nserver_of(request).x += 1\nother.y = 2\n")
    assert _server_attribute_assignments(path) == [1, 2]
