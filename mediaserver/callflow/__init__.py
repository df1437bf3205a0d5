"""The Voxology Call Flow Loop dialect (SPEC section 6; seed ``003``, "Call Flow Loop").

Theory of operation. A call handed to the loop (``callflow@v1``, or a route
``callflow:URL``, which is sugar for it) asks the application's URL what to
do: an ``init_call`` request first, a ``live_call`` request whenever the
returned action list runs out or a REDIRECT asks, and an ``end_call``
request when the call flow is over. Each answer is a JSON list of Voxology
actions (SAY, COLLECT, IF, GOTO...).

The package is split so that everything but the loop itself is pure and
unit-tested without a call:

- :mod:`.errors`: the seed's "Call Flow Loop Errors" table (codes, what the
  caller hears) and which code a failure gets;
- :mod:`.requests`: the callback request bodies and their query-string form,
  built from a snapshot of the call and the flow's state;
- :mod:`.actions` (with :mod:`.parse_media`, :mod:`.parse_flow`,
  :mod:`.fields`, :mod:`.model`): the returned JSON parsed and validated into
  typed actions, every mistake named by its path
  (``actions[3].then[0] (SAY): params.text: ...``);
- :mod:`.translate`: each media action as native action items
  (``say@v1``, ``gather@v1``...), checked by the scenario validator, so the
  loop runs them through the same runner and builtins as YAML scenarios;
- :mod:`.variables`: the seed's native constants and writable variables;
- :mod:`.loop` (with :mod:`.steps` and :mod:`.callback`): the Call Flow Loop
  (HTTP through ``ServerApi.fetch``, native items through the compiler it is
  handed, ``ServerApi.compile_scenario``, lists walked by the shared
  :mod:`mediaserver.actions.interpreter`, control flow and bookkeeping
  against the run's sandbox, error reporting);
- :mod:`.route`: the ``callflow:URL`` route as a one-action scenario.
"""
