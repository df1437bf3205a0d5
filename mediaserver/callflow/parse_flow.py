"""Parsing the control-flow actions of a response: IF, GOTO, LABEL, FOREACH,
SESSIONDATA, WEBHOOK and REDIRECT (seed, "Actions"), which the loop runs itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mediaserver.actions.variables import BUILTINS, VARIABLE_NAME
from mediaserver.callflow import model as m
from mediaserver.callflow.fields import NAME, NAME_HINT, ActionReader, Fields
from mediaserver.callflow.variables import NATIVE_CONSTANTS


def _if(a: ActionReader) -> m.If:
    for key in ("condition", "then", "orElse"):
        if a.params.has(key):
            a.params._take(key)
            a.params.add(key, f"{key} goes next to type, not inside params")
    if a.top.has("else") and not a.top.has("orElse"):
        a.top._take("else")
        a.top.add("else", "the IF action calls it orElse")
    action = m.If(
        a.path,
        a.name,
        condition=a.top.expression("condition", required=True) or "false",
        then=a.actions("then", required=True),
        or_else=a.actions("orElse"),
    )
    a.finish()
    return action


def _goto(a: ActionReader) -> m.Goto:
    label = a.params.string("label", required=True, pattern=NAME, hint=NAME_HINT, template=True)
    a.finish()
    return m.Goto(a.path, a.name, label=label or "")


def _label(a: ActionReader) -> m.Label:
    name = a.name
    if a.params.has("name"):
        name = a.params.string("name", pattern=NAME, hint=NAME_HINT)
    elif name is None:
        a.top.add("name", "required: the LABEL's name, the target of GOTO")
    elif not re.fullmatch(NAME, name):
        a.top.add("name", f"{name!r} is not {NAME_HINT}")
    a.finish()
    return m.Label(a.path, name)


def _foreach(a: ActionReader) -> m.Foreach:
    p = a.params
    names = {}
    for key, default in (("valueVar", "$val"), ("keyVar", "$key"), ("indexVar", "$index")):
        name = p.string(key, default=default, pattern=VARIABLE_NAME.pattern[1:-1],
                        hint="a variable name ($ then a letter, letters, digits or _)")  # fmt: skip
        if name in BUILTINS or name in NATIVE_CONSTANTS:
            p.add(key, f"{name} is read-only")
        names[key] = name or default
    then = a.actions("then", required=True)
    if not then and a.top.has("then"):
        a.top.add("then", "give at least one action")
    action = m.Foreach(
        a.path,
        a.name,
        iterator=p.expression("iterator", required=True) or "[]",
        value_var=names["valueVar"],
        key_var=names["keyVar"],
        index_var=names["indexVar"],
        then=then,
    )
    a.finish()
    return action


def _session_data(a: ActionReader) -> m.SessionData:
    fields = a.params if a.params.has("session_data") else a.top
    if not fields.has("session_data"):
        a.top.add("session_data", "required: an object, or an expression string")
    action = m.SessionData(a.path, a.name, value=fields.data("session_data"))
    a.finish("session_data")
    return action


def _webhook(a: ActionReader) -> m.Webhook:
    p = a.params
    action = m.Webhook(
        a.path,
        a.name,
        event_name=p.string("event_name", required=True) or "",
        data=p.data("webhook_data"),
        url=p.string("url", template=True),
        method=p.string("method", choices=("GET", "POST", "PUT")),
        headers=p.headers("headers"),
        await_response=p.boolean("await_response", False),
        timeout=float(p.integer("timeout", 30, 1, 30, "seconds")),
        events=a.events(("on_error",)),
    )
    _content_type(p)
    a.finish("events")
    return action


def _redirect(a: ActionReader) -> m.Redirect:
    p = a.params
    action = m.Redirect(
        a.path,
        a.name,
        url=p.string("url", required=True, template=True) or "",
        method=p.string("method", choices=("POST", "PUT", "GET"), template=True),
        headers=p.headers("headers"),
        content_type=_content_type(p),
    )
    a.finish()
    return action


def _content_type(p: Fields) -> str | None:
    value = p.string("content_type", template=True)
    if value is not None and value.split(";")[0].strip().lower() != "application/json":
        p.add("content_type", "not supported by this server: requests are application/json "
              "(or a query string with GET)")  # fmt: skip
        return None
    return value


PARSERS: dict[str, Callable[[ActionReader], m.Action]] = {
    "IF": _if,
    "GOTO": _goto,
    "LABEL": _label,
    "FOREACH": _foreach,
    "SESSIONDATA": _session_data,
    "WEBHOOK": _webhook,
    "REDIRECT": _redirect,
}
