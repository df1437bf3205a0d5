"""The pure parts behind the Callr v2 tasks, recordings in bulk, MP3 and webhook signatures.

Tasks: their states, cancellation, progress events; the HMAC of each
``hmac_algo``; the MP3 rendition made once; the recordings index searched
by several ids and emptied in bulk without touching one being recorded; a
stored webhook keeping its algorithm; the checks of a webhook creation.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from mediaserver.api.models import ApiError, WebhookIn
from mediaserver.api.routes_recordings import sids_of
from mediaserver.api.routes_webhooks import _creation
from mediaserver.media.mp3 import Mp3Renditions, encode_mp3, rendition_path
from mediaserver.store import NewRecording, RecordingFilter, Store
from mediaserver.tasks import TASK_UPDATED, Progress, TaskNotCancellable, Tasks
from mediaserver.webhooks.envelope import HMAC_ALGOS, sign, verify_signature

# --- tasks ---------------------------------------------------------------------------------


class Posts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, event: str, subject: str, payload: Mapping[str, Any]) -> None:
        self.seen.append((event, subject, dict(payload)))

    def statuses(self) -> list[str]:
        return [payload["status"] for _, _, payload in self.seen]


async def settle(tasks: Tasks, task_id: str) -> None:
    for _ in range(200):
        task = tasks.get(task_id)
        assert task is not None
        if task.runner is not None and task.runner.done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the task did not end")


async def test_a_task_goes_pending_running_done_with_an_event_at_each_step() -> None:
    posts = Posts()
    tasks = Tasks(posts)

    async def work(progress: Progress) -> dict[str, Any]:
        for done in range(1, 101):
            progress(done, 100)
        return {"rows": 100}

    task = tasks.start("calls.export", work)
    assert len(task.id) == 32 and task.id.isalnum() and task.status == "pending"
    await settle(tasks, task.id)
    assert (task.status, task.percent, task.result) == ("done", 100, {"rows": 100})
    assert task.ended is not None and task.error is None
    statuses = posts.statuses()
    assert statuses[:2] == ["pending", "running"] and statuses[-1] == "done"
    # A tenth of progress per event, not one per row.
    percents = [p["percent"] for _, _, p in posts.seen if p["status"] == "running"]
    assert percents == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert {event for event, _, _ in posts.seen} == {TASK_UPDATED}
    assert {subject for _, subject, _ in posts.seen} == {task.id}
    assert posts.seen[-1][2] == task.as_json()


async def test_a_failing_task_ends_in_error_with_the_reason() -> None:
    posts = Posts()
    tasks = Tasks(posts)

    async def work(progress: Progress) -> None:
        raise OSError("disk full")

    task = tasks.start("calls.export", work)
    await settle(tasks, task.id)
    assert (task.status, task.error) == ("error", "disk full")
    assert posts.statuses() == ["pending", "running", "error"]


async def test_cancelling_a_pending_task_means_it_never_runs() -> None:
    posts = Posts()
    tasks = Tasks(posts)
    ran = []

    async def work(progress: Progress) -> None:
        ran.append(1)

    task = tasks.start("recordings.delete", work, delay=5.0)
    await asyncio.sleep(0)
    assert tasks.cancel(task.id) is task and task.status == "cancelled"
    await settle(tasks, task.id)
    assert ran == [] and posts.statuses() == ["pending", "cancelled"]
    with pytest.raises(TaskNotCancellable):
        tasks.cancel(task.id)


async def test_cancelling_a_running_task_stops_its_work() -> None:
    tasks = Tasks()
    started = asyncio.Event()

    async def work(progress: Progress) -> None:
        started.set()
        await asyncio.sleep(30)

    task = tasks.start("calls.export", work)
    await asyncio.wait_for(started.wait(), 5)
    tasks.cancel(task.id)
    await settle(tasks, task.id)
    assert task.status == "cancelled" and task.result is None


async def test_stopping_cancels_what_is_left() -> None:
    tasks = Tasks()

    async def work(progress: Progress) -> None:
        await asyncio.sleep(30)

    task = tasks.start("calls.export", work)
    await tasks.stop()
    assert (task.status, task.error) == ("cancelled", "the server stopped")


# --- signatures ----------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["MD5", "SHA1", "SHA256", "SHA512"])
def test_each_hmac_algo_signs_the_body_as_hashlib_does(algo: str) -> None:
    body = b'{"id":"x","type":"v2.task.updated"}'
    expected = hmac.new(b"s3cret-key", body, getattr(hashlib, algo.lower())).hexdigest()
    assert sign(body, "s3cret-key", algo) == expected
    assert verify_signature(body, "s3cret-key", expected.upper(), algo)
    assert not verify_signature(
        body, "s3cret-key", expected, "SHA256" if algo != "SHA256" else "MD5"
    )


def test_the_default_signature_is_still_hmac_sha256() -> None:
    body = b"{}"
    assert sign(body, "k") == hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert set(HMAC_ALGOS) == {"MD5", "SHA1", "SHA256", "SHA512"}


# --- the MP3 rendition ---------------------------------------------------------------------


def tone_wav(path: Path, freq: float = 800.0, seconds: float = 1.0, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), 0.4 * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")
    return path


def test_an_mp3_keeps_the_tone_rate_and_length(tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "k3d9x0qa.wav")
    encode_mp3(wav, rendition_path(wav))
    samples, rate = sf.read(str(tmp_path / "k3d9x0qa.mp3"))
    assert rate == 8000 and abs(len(samples) / rate - 1.0) < 0.1
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * rate / len(samples) - 800) < 5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_mp3_recording_is_its_own_rendition(tmp_path: Path) -> None:
    assert rendition_path(tmp_path / "a.mp3") == tmp_path / "a.mp3"
    assert rendition_path(tmp_path / "a.wav") == tmp_path / "a.mp3"


async def test_two_first_requests_encode_once(tmp_path: Path) -> None:
    wav = tone_wav(tmp_path / "r.wav")
    renditions = Mp3Renditions()
    first, second = await asyncio.gather(renditions.ensure(wav), renditions.ensure(wav))
    assert first == second == tmp_path / "r.mp3"
    made = first.stat().st_mtime_ns
    assert await renditions.ensure(wav) == first and first.stat().st_mtime_ns == made


def test_unreadable_audio_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(RuntimeError):
        encode_mp3(bad, tmp_path / "bad.mp3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wav"]


# --- the stores ----------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "store.db")
    yield opened
    await opened.close()


async def test_recordings_by_several_ids_and_a_bulk_delete_sparing_one_in_progress(
    store: Store,
) -> None:
    made = [
        await store.recordings.create(NewRecording(path="{id}.wav", format="wav")) for _ in range(3)
    ]
    live = await store.recordings.create(
        NewRecording(path="{id}.wav", format="wav", status="recording")
    )
    some = await store.recordings.search(RecordingFilter(ids=[made[0].id, made[2].id]))
    assert sorted(r.id for r in some.hits) == sorted([made[0].id, made[2].id])
    assert (await store.recordings.search(RecordingFilter(ids=[]))).total == 0
    gone = await store.recordings.delete_finished([made[1].id, live.id])
    assert gone == [(made[1].id, f"{made[1].id}.wav")]
    rest = await store.recordings.delete_finished(None)
    assert sorted(rid for rid, _ in rest) == sorted([made[0].id, made[2].id])
    left = await store.recordings.search()
    assert [r.id for r in left.hits] == [live.id]


async def test_a_stored_webhook_keeps_its_algorithm_and_is_found_by_sid(store: Store) -> None:
    hook = await store.webhooks.create(
        "http://127.0.0.1/h", ["v2.task.updated"], secret="12345678", hmac_algo="SHA512"
    )
    other = await store.webhooks.create("http://127.0.0.1/o")
    assert hook.hmac_algo == "SHA512" and other.hmac_algo == "SHA256"
    found = await store.webhooks.search(sid=hook.id)
    assert [w.id for w in found.hits] == [hook.id]
    enabled = await store.webhooks.enabled()
    assert {w.id: w.hmac_algo for w in enabled} == {hook.id: "SHA512", other.id: "SHA256"}
    changed = await store.webhooks.update(hook.id, enabled=False)
    assert changed is not None and changed.hmac_algo == "SHA512"


# --- the API's checks ----------------------------------------------------------------------


def test_sids_are_checked_and_an_empty_one_never_means_all() -> None:
    assert sids_of(None) is None
    assert sids_of(["ABCD1234", "abcd1234", "zzzz0000"]) == ["abcd1234", "zzzz0000"]
    for bad in ([""], ["../etc/p"], ["abc"], ["a" * 8] * 101):
        with pytest.raises(ApiError) as refused:
            sids_of(bad)
        assert refused.value.body.error.field == "sid"


def test_a_webhook_is_created_the_seed_s_way_or_the_native_way() -> None:
    seed = WebhookIn.model_validate(
        {"endpoint": "https://example.com/h",
         "options": {"hmac_algo": "MD5", "hmac_secret": "12345678"}}
    )  # fmt: skip
    assert _creation(seed, "v2.call.inbound.started") == (
        ["v2.call.inbound.started"], "12345678", "MD5",
    )  # fmt: skip
    native = WebhookIn.model_validate(
        {"endpoint": "https://example.com/h", "events": ["v2.call.*"], "secret": "x"}
    )
    assert _creation(native, None) == (["v2.call.*"], "x", "SHA256")
    plain = WebhookIn.model_validate({"endpoint": "https://example.com/h"})
    assert _creation(plain, None) == (["*"], None, "SHA256")
    both = WebhookIn.model_validate(
        {"endpoint": "https://example.com/h", "secret": "x",
         "options": {"hmac_secret": "12345678"}}
    )  # fmt: skip
    with pytest.raises(ApiError) as refused:
        _creation(both, None)
    assert refused.value.body.error.field == "secret"
    typed = WebhookIn.model_validate(
        {"endpoint": "https://example.com/h", "type": "v2.task.updated"}
    )
    with pytest.raises(ApiError):
        _creation(typed, "v2.recording.updated")
