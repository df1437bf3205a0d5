"""JavaScript expressions, templates and variable assignment in the quickjs sandbox."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediaserver.actions.expressions import (
    ExpressionError,
    Sandbox,
    check_expression,
    parse_template,
)
from mediaserver.actions.variables import Target, VariableError, check_value, parse_target


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(
        {
            "$attempts": 2,
            "$digits": "",
            "$name": "Ada",
            "$call": {"from": "sip:+33123@host", "to": "ivr"},
            "$pets": ["Whiskers", "Spot", "Bubbles"],
            "$obj": {"a": {"b": 1}},
        }
    )


def test_arithmetic_and_strings(sandbox: Sandbox) -> None:
    assert sandbox.evaluate("$attempts + 1") == 3
    assert sandbox.evaluate("$attempts / 4") == 0.5
    assert sandbox.evaluate("'My' + 'Conference' + $attempts") == "MyConference2"
    assert sandbox.evaluate("$name.toUpperCase()") == "ADA"
    assert sandbox.evaluate("Math.max(3, $attempts * 5)") == 10


def test_results_convert_to_python(sandbox: Sandbox) -> None:
    assert sandbox.evaluate("null") is None
    assert sandbox.evaluate("undefined") is None
    assert sandbox.evaluate("true") is True
    assert sandbox.evaluate("{cat: 'Whiskers', n: [1, 2.5, null]}") == {
        "cat": "Whiskers",
        "n": [1, 2.5, None],
    }
    assert sandbox.evaluate("$pets[1]") == "Spot"
    integral = sandbox.evaluate("2 * 3")
    assert integral == 6 and isinstance(integral, int)


def test_truthiness_is_javascript(sandbox: Sandbox) -> None:
    assert sandbox.test("!$digits && $attempts < 3") is True
    assert sandbox.test("[]") is True  # unlike Python
    assert sandbox.test("({})") is True
    assert sandbox.test("'0'") is True
    assert sandbox.test("0") is False
    assert sandbox.test("''") is False
    assert sandbox.test("null") is False
    assert sandbox.test("$attempts >= 3") is False


def test_string_form_is_javascript_string(sandbox: Sandbox) -> None:
    assert sandbox.text("1") == "1"
    assert sandbox.text("1.0") == "1"
    assert sandbox.text("$pets") == "Whiskers,Spot,Bubbles"
    assert sandbox.text("null") == "null"


def test_undefined_variable_is_an_error(sandbox: Sandbox) -> None:
    with pytest.raises(ExpressionError, match=r"ReferenceError: '\$nope' is not defined"):
        sandbox.evaluate("$nope + 1")
    assert sandbox.evaluate("typeof $nope") == "undefined"


def test_javascript_errors_keep_their_message(sandbox: Sandbox) -> None:
    with pytest.raises(ExpressionError, match="TypeError"):
        sandbox.evaluate("$obj.missing.deeper")
    with pytest.raises(ExpressionError, match="Error: boom"):
        sandbox.evaluate("(function(){ throw new Error('boom') })()")


def test_variables_are_read_only_inside_expressions(sandbox: Sandbox) -> None:
    with pytest.raises(ExpressionError, match="read-only"):
        sandbox.evaluate("$attempts = 5")
    with pytest.raises(ExpressionError, match="TypeError"):
        sandbox.evaluate("$pets.push('Rex')")
    with pytest.raises(ExpressionError, match="not defined"):
        sandbox.evaluate("leaked = 1")
    assert sandbox.variables["$attempts"] == 2
    assert sandbox.variables["$pets"] == ["Whiskers", "Spot", "Bubbles"]


def test_runaway_loop_is_stopped_quickly(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match="took too long"):
        sandbox.evaluate("(function(){ while (true) {} })()")
    assert time.monotonic() - started < 1.0
    assert sandbox.evaluate("$attempts") == 2  # the sandbox still works


def test_memory_bomb_is_stopped_and_the_sandbox_recovers(sandbox: Sandbox) -> None:
    started = time.monotonic()
    # Megabyte strings reach the memory limit in a few steps, well inside the time
    # limit even on a loaded machine: this checks the memory limit, not the clock.
    with pytest.raises(ExpressionError, match="ran out of memory"):
        sandbox.evaluate(
            "(function(){ var a = []; while (true) a.push('x'.repeat(1 << 20) + a.length) })()"
        )
    with pytest.raises(ExpressionError, match=r"ran out of memory|took too long"):
        sandbox.evaluate("(globalThis.keep = 'x'.repeat(1 << 20)).repeat(64)")
    assert time.monotonic() - started < 2.0
    assert sandbox.evaluate("$attempts + 1") == 3


def test_deep_recursion_is_an_error(sandbox: Sandbox) -> None:
    with pytest.raises(ExpressionError, match="recursed too deeply"):
        sandbox.evaluate("(function f(n){ return f(n + 1) + 1 })(0)")
    assert sandbox.evaluate("$attempts") == 2


def test_no_io_or_host_globals(sandbox: Sandbox) -> None:
    for name in (
        "std",
        "os",
        "require",
        "process",
        "print",
        "console",
        "fetch",
        "XMLHttpRequest",
        "setTimeout",
        "import_meta",
    ):
        assert sandbox.evaluate(f"typeof {name}") == "undefined", name
    # No module loader and no job queue: a dynamic import is a promise that never settles.
    assert sandbox.evaluate("import('os')") == {}


def test_statements_are_not_expressions() -> None:
    for source in ("1); (2", "var x = 1", "while (true) {}", "", "1 +", "}{"):
        with pytest.raises(ExpressionError):
            check_expression(source)
    assert check_expression("$a ? 1 : [2, 3]").source == "$a ? 1 : [2, 3]"


def test_now_is_fresh_epoch_milliseconds(sandbox: Sandbox) -> None:
    now = sandbox.evaluate("$now")
    assert abs(now - time.time() * 1000) < 5000
    assert "$now" not in sandbox.variables


# -- templates ------------------------------------------------------------------------------


def test_interpolation_with_and_without_dollar(sandbox: Sandbox) -> None:
    assert sandbox.interpolate("Hello ${$name}!") == "Hello Ada!"
    assert sandbox.interpolate("Hello ${name}, attempt ${attempts + 1}") == "Hello Ada, attempt 3"
    assert sandbox.interpolate("from ${call.from}") == "from sip:+33123@host"
    assert sandbox.interpolate("${pets[0]} and ${$pets.length}") == "Whiskers and 3"


def test_bare_names_do_not_shadow_javascript_globals() -> None:
    sandbox = Sandbox({"$Math": "mine", "$x": 4})
    assert sandbox.interpolate("${Math.sqrt(x)} ${$Math}") == "2 mine"


def test_interpolation_is_string_conversion(sandbox: Sandbox) -> None:
    assert sandbox.interpolate("${null} ${[1, 2]} ${true}") == "null 1,2 true"
    assert sandbox.interpolate("${ {a: 1}.a }") == "1"
    assert sandbox.interpolate("${'}'}") == "}"


def test_spelled_interpolation(sandbox: Sandbox) -> None:
    assert sandbox.interpolate("You dialled ${...'1234'}.") == "You dialled 1 2 3 4."


def test_literal_dollar_brace_escape(sandbox: Sandbox) -> None:
    assert sandbox.interpolate(r"costs \${price} and $5") == "costs ${price} and $5"
    assert parse_template("plain $ text").constant == "plain $ text"


def test_bad_templates_are_refused_at_parse_time() -> None:
    with pytest.raises(ExpressionError, match="unterminated"):
        parse_template("Hello ${name")
    with pytest.raises(ExpressionError, match="empty"):
        parse_template("Hello ${ }")
    with pytest.raises(ExpressionError, match="invalid expression"):
        parse_template("Hello ${1 +}")


def test_undefined_in_template_is_an_error(sandbox: Sandbox) -> None:
    with pytest.raises(ExpressionError, match="not defined"):
        sandbox.interpolate("Hi ${nobody}")


# -- assignment -----------------------------------------------------------------------------


def test_assignment_of_evaluated_values(sandbox: Sandbox) -> None:
    sandbox.assign("$counter", sandbox.evaluate("0"))
    sandbox.assign("$counter", sandbox.evaluate("$counter + 1"))
    assert sandbox.evaluate("$counter") == 1
    assert sandbox.variables["$counter"] == 1


def test_dotted_and_indexed_assignment(sandbox: Sandbox) -> None:
    sandbox.assign("$obj.foo", "bar")
    sandbox.assign("$obj.a.b", 2)
    sandbox.assign("$pets[1]", "Rex")
    sandbox.assign("$pets[3]", "Tweety")
    sandbox.assign('$obj["with space"]', True)
    assert sandbox.evaluate("$obj.foo + $obj.a.b") == "bar2"
    assert sandbox.evaluate("$pets.join(' ')") == "Whiskers Rex Bubbles Tweety"
    assert sandbox.variables["$obj"] == {"a": {"b": 2}, "foo": "bar", "with space": True}


def test_bad_assignments(sandbox: Sandbox) -> None:
    with pytest.raises(ExpressionError, match="undefined"):
        sandbox.assign("$obj.x.y", 1)
    with pytest.raises(ExpressionError, match="past the end"):
        sandbox.assign("$pets[7]", 1)
    with pytest.raises(ExpressionError, match="not defined"):
        sandbox.assign("$unknown.x", 1)
    with pytest.raises(ExpressionError, match="read-only"):
        sandbox.assign("$call", 1)
    with pytest.raises(ExpressionError, match="not a JSON value"):
        sandbox.assign("$x", object())
    with pytest.raises(ExpressionError, match="invalid"):
        sandbox.assign("$x.", 1)


def test_assigned_values_are_copies(sandbox: Sandbox) -> None:
    value = {"list": [1]}
    sandbox.assign("$v", value)
    value["list"].append(2)
    assert sandbox.evaluate("$v.list.length") == 1
    snapshot = sandbox.variables
    snapshot["$v"]["list"].append(3)
    assert sandbox.evaluate("$v.list.length") == 1


def test_builtins_are_set_through_define_builtin(sandbox: Sandbox) -> None:
    sandbox.define_builtin("$digits", "42")
    assert sandbox.evaluate("$digits") == "42"
    with pytest.raises(ValueError, match="not a settable"):
        sandbox.define_builtin("$mine", 1)


def test_parse_target() -> None:
    assert parse_target("$a") == Target("$a")
    assert parse_target("$a.b[2]['c d']") == Target("$a", ("b", 2, "c d"))
    for bad in ("a", "$1a", "$a..b", "$a[-1]", "$a[x]", "$a b"):
        with pytest.raises(VariableError):
            parse_target(bad)


def test_check_value_refuses_non_json() -> None:
    check_value({"a": [1, 2.5, None, True, "x"]})
    for bad in (float("nan"), {1: "x"}, {"a": {1, 2}}, b"bytes"):
        with pytest.raises(VariableError):
            check_value(bad)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_values_survive_the_round_trip_through_javascript(value: object) -> None:
    sandbox = Sandbox({"$v": value})
    assert sandbox.evaluate("$v") == value


def test_helper_names_cannot_be_shadowed_by_variables() -> None:
    sandbox = Sandbox({"$spell": "ab", "$String": "s", "$bare": 1})
    assert sandbox.interpolate("${...spell} ${$String} ${bare}") == "a b s 1"
    assert sandbox.interpolate("${String(1)}") == "1"  # a JS global wins over $String


def test_a_variable_too_big_for_the_sandbox_is_an_expression_error() -> None:
    sandbox = Sandbox({"$big": ["x" * 1000] * 5000}, memory_limit=2 * 1024 * 1024)
    with pytest.raises(ExpressionError, match=r"\$big does not fit in the expression sandbox"):
        sandbox.evaluate("1")
    assert len(sandbox.variables["$big"]) == 5000


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("'a\x00b'", r"NUL character \(\\x00\); remove it"),
        ("'\ud800'", r"unpaired surrogate U\+D800"),
    ],
)
def test_text_quickjs_cannot_take_is_an_expression_error(source: str, message: str) -> None:
    """Found by fuzzing scenario YAML: "\\x00" and "\\ud800" escapes crashed the check."""
    with pytest.raises(ExpressionError, match=message):
        check_expression(source)
    with pytest.raises(ExpressionError, match=message):
        parse_template("hello ${" + source + "}")
