"""``gather@v1``: collect DTMF digits from the caller, with a prompt and retries.

Theory of operation. Keys are buffered by the call as they arrive
(type-ahead), and this action reads them one by one with
``call.next_digit(timeout)``. Each attempt:

1. If a key is already buffered (pressed during an earlier say or play), the
   prompt is skipped and that key is the first digit. Otherwise the
   ``prompt`` items are played and any key stops them; the key stays
   buffered, so it is the first digit.
2. Digits are read: up to ``timeout`` seconds for the first one (counted
   from the end of the prompt), then up to ``inter_digit_timeout`` between
   digits. Reading stops at ``max_digits``, at ``finish_on_key`` (not part
   of the result; ``none`` disables it), or at a timeout.
3. The attempt is *valid* with at least ``min_digits`` digits, all in
   ``valid_digits`` when that is given. A key outside ``valid_digits``, too
   few digits, or a finish key alone makes it *invalid*; no key at all is a
   *timeout*.

An invalid attempt forgets the keys still buffered and plays
``invalid_prompt``; then, while attempts remain, the next attempt starts
(prompt again). The result, and ``$digits``, are the digits of the first
valid attempt, or ``""`` when none was valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from mediaserver.actions.callapi import DTMF_KEYS, CallApi
from mediaserver.actions.definition import ActionContext, ActionDefinition
from mediaserver.actions.params import Param, ParamType
from mediaserver.actions.prompt import play_prompt

Outcome = Literal["valid", "invalid", "timeout"]


async def gather(context: ActionContext, params: Mapping[str, Any]) -> str:
    call = context.call
    result = ""
    for attempt in range(1, params["attempts"] + 1):
        # Type-ahead: a key pressed before this gather answers it without the prompt.
        first = await call.next_digit(0)
        if first is None and params["prompt"]:
            await play_prompt(context, params["prompt"], DTMF_KEYS)
        outcome, digits = await _collect(call, params, first)
        context.log.debug("gather attempt", attempt=attempt, outcome=outcome, digits=digits)
        if outcome == "valid":
            result = digits
            break
        if outcome == "invalid":
            call.flush_digits()
            if params["invalid_prompt"]:
                await play_prompt(context, params["invalid_prompt"], DTMF_KEYS)
    context.set_builtin("$digits", result)
    return result


async def _collect(
    call: CallApi, params: Mapping[str, Any], first: str | None
) -> tuple[Outcome, str]:
    finish = params["finish_on_key"]
    valid = params["valid_digits"]
    digits = ""
    pressed = False
    key = first
    while True:
        if key is None:
            wait = params["inter_digit_timeout"] if digits else params["timeout"]
            key = await call.next_digit(wait)
            if key is None:
                break
        pressed = True
        if key == finish:
            break
        if valid is not None and key not in valid:
            return "invalid", digits + key
        digits += key
        key = None
        if len(digits) >= params["max_digits"]:
            break
    if not pressed:
        return "timeout", ""
    if len(digits) < params["min_digits"]:
        return "invalid", digits
    return "valid", digits


def _digit_counts(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    if params["max_digits"] < params["min_digits"]:
        return [
            (
                "max_digits",
                f"gather@v1: max_digits ({params['max_digits']}) is less than min_digits "
                f"({params['min_digits']})",
            )
        ]
    return []


GATHER = ActionDefinition(
    name="gather",
    version=1,
    summary="Play a prompt and collect DTMF digits, with retries.",
    params=(
        Param("prompt", ParamType.PROMPT, "what to play first; any key interrupts it", default=()),
        Param(
            "min_digits",
            ParamType.INTEGER,
            "fewest digits of a valid answer",
            default=1,
            minimum=1,
            maximum=128,
        ),
        Param(
            "max_digits",
            ParamType.INTEGER,
            "stop reading at this many digits",
            default=1,
            minimum=1,
            maximum=128,
        ),
        Param(
            "timeout",
            ParamType.SECONDS,
            "seconds to wait for the first key after the prompt",
            default=5.0,
            minimum=0,
            maximum=3600,
        ),
        Param(
            "inter_digit_timeout",
            ParamType.SECONDS,
            "seconds to wait for each further key",
            default=3.0,
            minimum=0,
            maximum=3600,
        ),
        Param(
            "finish_on_key",
            ParamType.STRING,
            "key that ends the input (not part of the result); none to disable",
            default="#",
            choices=(*DTMF_KEYS, "none"),
        ),
        Param(
            "valid_digits",
            ParamType.KEYS,
            "keys allowed in the answer; any other key makes the attempt invalid",
        ),
        Param(
            "attempts",
            ParamType.INTEGER,
            "how many times to prompt before giving up",
            default=1,
            minimum=1,
            maximum=20,
        ),
        Param(
            "invalid_prompt", ParamType.PROMPT, "what to play after an invalid attempt", default=()
        ),
    ),
    run=gather,
    result='the digits entered, without the finish key; "" when no attempt was valid '
    "(also stored in $digits)",
    check=_digit_counts,
)

ACTIONS = (GATHER,)
