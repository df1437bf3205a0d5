"""Template Mapping: ``{{property}}`` and ``{{property|default}}`` in an answer.

Seed, "Template Mapping": "property is the callback data property name
(flattened) and default is an optional default value to use if no property
name match is found". The callback data is the request the answer replies
to, flattened as a GET callback's query string is
(:func:`~mediaserver.callflow.requests.query_items`: ``session_data.firstName``,
``key_presses.menu``, ``duration``). Every string value of the answer is
mapped before it is parsed, as the seed's ``is_template`` (default true)
asks; ``${...}`` interpolation happens later, when each action runs.

Decisions where the seed is silent: a property that is not in the request
and has no default becomes the empty string; keys of objects are left as
they are; only names of letters, digits, ``_``, ``.`` and ``-`` are
templates, so JavaScript such as ``({a: {b: 1}})`` is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*(?:\|([^{}]*))?\}\}")


def map_templates(answer: Any, properties: Mapping[str, str]) -> Any:
    """``answer`` with the templates of its strings replaced from ``properties``."""
    if isinstance(answer, str):
        if "{{" not in answer:
            return answer
        return _TEMPLATE.sub(lambda m: properties.get(m.group(1), m.group(2) or ""), answer)
    if isinstance(answer, dict):
        return {key: map_templates(value, properties) for key, value in answer.items()}
    if isinstance(answer, list):
        return [map_templates(item, properties) for item in answer]
    return answer
