"""Native calls on untrusted models, contained: a crash rejects the model instead of killing the process.

onnx's shape inference and checker are C++; a 96-byte model (a ``RegexFullMatch`` whose input name is
empty) makes shape inference dereference nothing and the whole CLI die with SIGSEGV and no message.
:func:`contained` runs such a call in a child forked after the imports (a few milliseconds: the child
shares the parent's memory copy-on-write), passes its result back through a pipe, and turns a child
killed by a signal into :class:`~analyzer.errors.ModelLoadError` ("onnx shape inference crashed on this
model (SIGSEGV); the model was rejected"), exit 2. An exception the call raises is raised again here.
Where ``fork`` does not exist the call runs in process.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import Any

from analyzer.errors import ModelLoadError


class _Raised(Exception):
    """An exception of the child that did not pickle: its type name and message."""


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def contained(what: str, call: Callable[[], Any]) -> Any:
    """``call()`` (whose result pickles) in a forked child; ``what`` names it in the error."""
    if not hasattr(os, "fork"):
        return call()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send, leave without running the parent's cleanup
        code = 0
        try:
            os.close(read_end)
            import faulthandler

            faulthandler.disable()  # a crash here is an expected outcome, reported by the parent in one line
            try:
                payload = pickle.dumps((True, call()), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # noqa: BLE001 - every outcome goes back to the parent
                try:
                    payload = pickle.dumps((False, e), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:  # noqa: BLE001 - an exception type that does not pickle
                    payload = pickle.dumps((False, _Raised(f"{type(e).__name__}: {e}")))
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view):]
        except BaseException:  # noqa: BLE001
            code = 70
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while chunk := pipe.read(1 << 20):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise ModelLoadError(f"{what} crashed on this model ({_signal_name(os.WTERMSIG(status))}); the model was rejected")
    if not chunks:
        raise ModelLoadError(f"{what} ended without a result on this model (exit {os.waitstatus_to_exitcode(status)}); "
                             "the model was rejected")
    ok, value = pickle.loads(b"".join(chunks))
    if ok:
        return value
    raise value
