"""Template Mapping (seeds/003): ``{{property}}`` and ``{{property|default}}``."""

from __future__ import annotations

from mediaserver.callflow.templates import map_templates

REQUEST = {"session_data.firstName": "Jill", "duration": "4200", "key_presses.menu": "2"}


def test_properties_and_defaults_in_every_string() -> None:
    answer = {
        "actions": [
            {"type": "SAY", "params": {"text": "Hello, {{session_data.firstName|guest}}."}},
            {"type": "SAY", "params": {"text": "{{session_data.lastName|Doe}} {{duration}}"}},
            {"type": "PAUSE", "params": {"seconds": 1}},
            {"type": "IF", "params": {"condition": "'{{key_presses.menu}}' == '2'"}},
        ]
    }
    assert map_templates(answer, REQUEST) == {
        "actions": [
            {"type": "SAY", "params": {"text": "Hello, Jill."}},
            {"type": "SAY", "params": {"text": "Doe 4200"}},
            {"type": "PAUSE", "params": {"seconds": 1}},
            {"type": "IF", "params": {"condition": "'2' == '2'"}},
        ]
    }


def test_a_missing_property_without_default_is_empty() -> None:
    assert map_templates("[{{nothing}}] [{{ nothing | none }}]", REQUEST) == "[] [ none ]"


def test_what_is_not_a_template_is_left_alone() -> None:
    untouched = ["({a: {b: 1}})", "{{a b}}", "${duration}", "{{}}", "{ {duration} }"]
    assert map_templates(untouched, REQUEST) == untouched
    assert map_templates({"{{duration}}": 1}, REQUEST) == {"{{duration}}": 1}
