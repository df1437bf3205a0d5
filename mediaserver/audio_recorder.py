"""The ``audio-recorder`` route target: the line callers dial to record an audio file.

``routes: {"+33199000000": audio-recorder}`` makes the number the server's
recording line (:mod:`mediaserver.audio_phone` gives it out with a code).
A call to it runs :data:`SCENARIO`, composed of ordinary actions and
``audio-file@v1``: ask for the code (three tries), beep and record until
``#`` or silence (``voicemail@v1``), then "1 to keep, 2 to record again";
on keep the recording becomes the audio file's content.
"""

from __future__ import annotations

import dataclasses
import functools

from mediaserver.actions.model import Scenario
from mediaserver.actions.scenario import load_scenario_text
from mediaserver.config import RECORDING_LINE

TRIES = 3
MAX_SECONDS = 300.0
SILENCE_SECONDS = 5.0

SCENARIO = f"""\
variables:
  $tries: 0
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - label: ask
        action: gather@v1
        params:
          prompt: [{{say: "Please enter your recording code, then press hash."}}]
          min_digits: 6
          max_digits: 6
          timeout: 10
        result: $code
      - action: audio-file@v1
        params: {{command: check-code, code: "${{code}}"}}
        result: $file
      - action: if@v1
        params:
          condition: "!$file"
          then:
            - action: set@v1
              params: {{$tries: "$tries + 1"}}
            - action: if@v1
              params:
                condition: "$tries < {TRIES}"
                then:
                  - action: say@v1
                    params: {{text: "That code is not valid."}}
                  - action: goto@v1
                    params: {{label: ask}}
            - action: say@v1
              params: {{text: "That code is not valid. Goodbye."}}
            - action: hangup@v1
      - label: record
        action: say@v1
        params: {{text: "After the beep, record your message, then press hash."}}
      - action: voicemail@v1
        params:
          finish_on_key: "#"
          silence_timeout: {SILENCE_SECONDS}
          max_length: {MAX_SECONDS}
      - action: gather@v1
        params:
          prompt: [{{say: "Press 1 to keep this recording, or 2 to record again."}}]
          valid_digits: "12"
          finish_on_key: none
          timeout: 10
          attempts: 3
        result: $choice
      - action: switch@v1
        params:
          value: $choice
          cases:
            "1":
              - action: audio-file@v1
                params: {{command: save, code: "${{code}}"}}
                on-error:
                  - action: say@v1
                    params: {{text: "Sorry, the recording could not be saved. Goodbye."}}
                  - action: hangup@v1
              - action: say@v1
                params: {{text: "Your recording is saved. Goodbye."}}
            "2":
              - action: goto@v1
                params: {{label: record}}
          default:
            - action: say@v1
              params: {{text: "Nothing was saved. Goodbye."}}
      - action: hangup@v1
"""
"""Its ``inbound-call`` branch; the ``$code`` entered stays the run's until the save."""


@functools.cache
def recorder_scenario() -> Scenario:
    """The recording line's scenario (compiled once; it never changes)."""
    scenario = load_scenario_text(SCENARIO, f"{RECORDING_LINE}.yaml")
    return dataclasses.replace(scenario, file=RECORDING_LINE)


def is_recording_line(target: str) -> bool:
    return target == RECORDING_LINE
