"""Building a reload's candidate policy in a child process, and taking it in on the event
loop in steps, so that a reload never holds up the requests the loop is answering.

Loading, linting and testing a large policy is seconds of CPU-bound Python. In a thread it
would share the GIL with the event loop (each request waiting up to a switch interval, 5 ms,
for every turn) and leave hundreds of thousands of temporary objects (YAML node trees,
plain data) to be freed and collected in this process, in pauses of 0.1-0.2 s. Instead
``build_elsewhere`` starts ``python -c 'from authsvc.policy_worker import child; child()'``,
which runs ``policy_gates.build`` and writes the result to its stdout: a tag byte, then for
a built policy length-prefixed frames, pickled (its fields and the gates' verdict, then its
rules ``CHUNK_RULES`` at a time). The parent reads and unpickles one frame at a time and
files the rule index (``RuleIndex.file_next``) a little at a time, handing the loop a turn
whenever ``STEP_SECONDS`` of work have passed; it never holds the whole answer (5 MB at
10k rules) in one buffer, whose allocation alone costs milliseconds. The child's
temporary objects die with it.

Pickle is safe here: the bytes come from a child this process started, running the same
interpreter and code, over a private pipe. The child is handed no keys: the account check
that needs them (``policy_gates.admit``) runs in the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import pickle
import struct
import sys
import time
import traceback
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import authsvc
from authsvc.policy import Policy
from authsvc.policy.index import RuleIndex
from authsvc.policy.model import Rule
from authsvc.policy_gates import MAX_DETAIL, Built, Rejected, RejectReason, ReloadSources, build

log = logging.getLogger("authsvc.policy_worker")

CHUNK_RULES = 5         # rules per frame: about 0.1 ms to unpickle
INDEX_STEP = 100        # rules filed per step, about 0.2 ms
# Work between two turns of the event loop. A callback that becomes ready during a step
# can wait for two steps (the next one is queued ahead of it), so this is half the lag.
STEP_SECONDS = 0.00025
BUILD_TIMEOUT = 600.0   # a build that takes longer is stuck (10k rules take ~5 s)
RETIRE_WAIT = 30.0      # how long a replaced policy may stay in use by requests in flight
MAX_STDERR = 2000

# -P: the working directory is not put in front of the child's sys.path (see _child_env).
_CHILD = ("-P", "-c", "from authsvc.policy_worker import child; child()")
_BUILT, _OTHER = b"B", b"R"  # frames of a built policy follow; a pickled Rejected or None
_LENGTH = struct.Struct(">I")


class Pacer:
    """Hands the event loop a turn whenever ``STEP_SECONDS`` of work have passed."""

    def __init__(self) -> None:
        self._due = time.perf_counter() + STEP_SECONDS

    async def tick(self) -> None:
        """Call between two small pieces of work."""
        if time.perf_counter() >= self._due:
            await asyncio.sleep(0)
            self._due = time.perf_counter() + STEP_SECONDS


async def build_elsewhere(sources: ReloadSources, *, unless_revision: str = "",
                          timeout: float = BUILD_TIMEOUT) -> Built | Rejected | None:
    """``policy_gates.build(sources)`` in a child process, with the rule index built;
    ``None`` when the files load as revision ``unless_revision``. Faults of the child are
    ``INTERNAL_ERROR`` rejections."""
    request = json.dumps({"paths": [str(p) for p in sources.paths],
                          "test_paths": [str(p) for p in sources.test_paths],
                          "reject_warnings": sources.reject_warnings,
                          "oidc_issuers": sources.oidc_issuers,
                          "unless_revision": unless_revision}).encode()
    process = await asyncio.create_subprocess_exec(
        sys.executable, *_CHILD, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_child_env())
    assert process.stdin and process.stdout and process.stderr
    errors = asyncio.ensure_future(process.stderr.read())  # alongside: the child never waits
    try:
        async with asyncio.timeout(timeout):
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # see stderr
                process.stdin.write(request)
                await process.stdin.drain()
            process.stdin.close()
            try:
                result: Built | Rejected | None = await _receive(process.stdout)
            except (asyncio.IncompleteReadError, pickle.UnpicklingError, EOFError) as exc:
                result = Rejected(RejectReason.INTERNAL_ERROR,
                                  f"the policy build process broke off its answer: {exc!r}")
            await process.wait()
            err = await errors
    except TimeoutError:
        return Rejected(RejectReason.INTERNAL_ERROR,
                        f"building the policy took longer than {timeout:g} s")
    finally:
        if process.returncode is None:  # timed out or cancelled: leave no orphan behind
            process.kill()
            await process.wait()
        errors.cancel()
    text = err.decode("utf-8", "replace")[-MAX_STDERR:]
    if process.returncode != 0:
        return Rejected(RejectReason.INTERNAL_ERROR, f"the policy build process exited with "
                        f"status {process.returncode}: {text}"[:MAX_DETAIL])
    if text:  # a traceback of a fault it turned into a rejection, or a warning
        log.warning("policy build process: %s", text)
    return result


def _child_env() -> dict[str, str] | None:
    """The child imports the authsvc this process runs. Installed, it finds it as we did
    (same interpreter, site and environment); imported from a source tree (the working
    directory, which -P leaves off the child's path), it is told where that is."""
    root = Path(authsvc.__file__).resolve().parent.parent
    if root in {Path(entry).resolve() for entry in sys.path[1:] if entry}:
        return None
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}


async def _receive(stdout: asyncio.StreamReader) -> Built | Rejected | None:
    tag = await stdout.readexactly(1)  # arrives once the build is done
    if tag != _BUILT:
        other: Rejected | None = pickle.loads(await stdout.read())  # noqa: S301 - see above
        return other
    with _collector_paused():
        fields, vetted, count = pickle.loads(await _frame(stdout))  # noqa: S301
        pacer = Pacer()
        rules: list[Rule] = []
        while len(rules) < count:
            rules.extend(pickle.loads(await _frame(stdout)))  # noqa: S301
            await pacer.tick()
        policy = Policy.model_construct(rules=tuple(rules), **fields)  # validated in the child
        del rules
        await _index(policy, pacer)
    return Built(policy, vetted)


async def _frame(stdout: asyncio.StreamReader) -> bytes:
    (length,) = _LENGTH.unpack(await stdout.readexactly(_LENGTH.size))
    return await stdout.readexactly(length)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Keep CPython's cyclic GC off while a candidate is taken in, then freeze it.

    A 10k-rule policy is ~600k long-lived objects. A full collection walks every one of them
    while holding the GIL: when the collector ran while a policy was built in this process,
    collections stalled the event loop for up to 1.3 s, and the one after the build for
    0.2 s. So: one collection first, over what is not frozen yet (what the service made since
    the last freeze, not the active policy); none while the candidate is taken in, when even
    the youngest generation would hold all of it; then ``gc.freeze``, which moves the
    candidate out of all later collections, whether it is activated or refused (both are
    freed by reference counting, ``retire``). Cyclic garbage the event loop makes in these
    moments is frozen too and never freed: little next to a policy, once per reload.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


async def accounts(policy: Policy) -> set[str]:
    """The accounts ``policy`` grants, a few rules at a time."""
    found: set[str] = set()
    pacer = Pacer()
    for rule in policy.rules:
        if rule.grant is not None:
            found.add(rule.grant.account)
        await pacer.tick()
    return found


async def warm(policy: Policy) -> None:
    """Build ``policy``'s rule conditions and index in steps, ahead of the first request."""
    pacer = Pacer()
    for rule in policy.rules:
        _ = rule.conditions
        await pacer.tick()
    await _index(policy, pacer)


async def _index(policy: Policy, pacer: Pacer) -> None:
    index = RuleIndex(policy.rules, filing=False)
    while not index.complete:
        index.file_next(INDEX_STEP)
        await pacer.tick()
    policy.adopt_index(index)


def write(result: Built | Rejected | None, out: BinaryIO) -> None:
    """What the child writes for ``result`` (``None``: unchanged)."""
    if not isinstance(result, Built):
        out.write(_OTHER + pickle.dumps(result, protocol=5))
        return
    policy = result.policy
    fields: dict[str, Any] = {name: getattr(policy, name) for name in type(policy).model_fields
                              if name != "rules"}
    out.write(_BUILT)
    frames: list[object] = [(fields, result.vetted, len(policy.rules))]
    frames.extend(policy.rules[start:start + CHUNK_RULES]
                  for start in range(0, len(policy.rules), CHUNK_RULES))
    for frame in frames:
        data = pickle.dumps(frame, protocol=5)
        out.write(_LENGTH.pack(len(data)) + data)


def child() -> None:
    """The child's main: a JSON request on stdin, the result on stdout."""
    gc.disable()  # a short life: nothing to gain from collecting, seconds to lose
    with contextlib.suppress(OSError):  # systemd's SystemCallFilter=~@resources: EPERM
        os.nice(10)  # the service's own process comes first when they compete for a core
    request = json.loads(sys.stdin.buffer.read())
    sources = ReloadSources(paths=tuple(map(Path, request["paths"])),
                            test_paths=tuple(map(Path, request["test_paths"])),
                            reject_warnings=request["reject_warnings"],
                            oidc_issuers=None if request["oidc_issuers"] is None
                            else tuple(request["oidc_issuers"]))
    result: Built | Rejected | None
    try:
        result = build(sources)
    except Exception as exc:
        # A bug in loading must not end the reloader; keeping the last good policy is the
        # safe side, and the rejection makes it visible.
        traceback.print_exc()
        result = Rejected(RejectReason.INTERNAL_ERROR,
                          f"{type(exc).__name__}: {exc}"[:MAX_DETAIL])
    if isinstance(result, Built) and result.policy.revision == request["unless_revision"]:
        result = None
    write(result, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    sys.stderr.flush()
    os._exit(0)  # skip freeing what the build made: the process ends here anyway


async def retire(box: list[Policy]) -> None:
    """Free the policy in ``box`` (taken out of it) a few rules at a time, on the loop.

    Dropping the last reference to 10k rules at once frees them in one C-level cascade that
    holds the GIL for ~60 ms. Requests in flight may still hold the policy (a decision is
    audited under the revision it was made with), so wait until they are done, then free it
    rule by rule. The caller must hold no other reference.
    """
    policy = box.pop()
    rules = list(policy.rules)
    alive = weakref.ref(policy)
    del policy
    deadline = time.monotonic() + RETIRE_WAIT
    while alive() is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    pacer = Pacer()
    while rules:
        rules.pop()
        await pacer.tick()
