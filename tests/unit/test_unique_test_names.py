"""Test modules have unique basenames across the test folders.

The folders have no ``__init__.py``: pytest imports each module by its
basename, so two ``test_x.py`` in different folders break collection of the
whole suite ("import file mismatch"), as happened twice.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_no_two_test_modules_share_a_basename() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert not [name for name, count in names.items() if count > 1]
