"""REALTIME10 (Callr v1): a call controlled command by command by an HTTP application.

:mod:`.protocol` has the RT.Request and RT.Response messages and the commands
as native action items; :mod:`.session` runs one call's dialogue;
:mod:`.route` makes a ``realtime:URL`` route target the one-action scenario
that runs ``realtime@v1``. docs/realtime.md describes it for users.
"""
