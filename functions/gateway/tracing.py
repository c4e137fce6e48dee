"""X-Ray tracing through Powertools' ``Tracer``, loaded only where traces are recorded.

Building a ``Tracer`` imports the X-Ray SDK and, through it, botocore — a few hundred
milliseconds that would otherwise land on every cold import of a handler module, including where
tracing is off (the local runtime, tests) and Powertools would disable it anyway. This proxy
builds the real ``Tracer`` on the first traced invocation, and never outside Lambda or when
``POWERTOOLS_TRACE_DISABLED`` is set — the same conditions under which Powertools itself turns
tracing off.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Handler = TypeVar("Handler", bound=Callable[..., Any])

_TRUTHY = ("1", "true", "yes", "on")


def tracing_enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether a ``Tracer`` would record here (Lambda, not SAM local, not disabled)."""
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in _TRUTHY:
        return False
    return bool(env.get("LAMBDA_TASK_ROOT")) and not env.get("AWS_SAM_LOCAL")


class LazyTracer:
    """A module-level stand-in for ``Tracer()`` whose X-Ray SDK loads on first use.

    ``patch_modules`` defaults to botocore only: AWS calls become subsegments, while the relay's
    many small publishes (from its own thread) stay out of the trace.
    """

    def __init__(self, patch_modules: Sequence[str] = ("botocore",)) -> None:
        self._patch_modules = tuple(patch_modules)
        self._tracer: Any = None
        self._lock = threading.Lock()

    @property
    def tracer(self) -> Any:
        """The Powertools ``Tracer`` (built now if it was not yet), or ``None`` when off."""
        if not tracing_enabled():
            return None
        if self._tracer is None:
            with self._lock:
                if self._tracer is None:
                    from aws_lambda_powertools import Tracer

                    self._tracer = Tracer(patch_modules=list(self._patch_modules))
        return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        """Like ``Tracer.capture_lambda_handler``, decided at the first invocation."""
        traced: list[Callable[..., Any]] = []

        @functools.wraps(handler)
        def invoke(event: Any, context: Any) -> Any:
            tracer = self.tracer
            if tracer is None:
                return handler(event, context)
            if not traced:
                with self._lock:
                    if not traced:
                        traced.append(tracer.capture_lambda_handler(handler))
            return traced[0](event, context)

        return invoke  # type: ignore[return-value]

    def put_annotation(self, key: str, value: str | int | float | bool) -> None:
        tracer = self.tracer
        if tracer is not None:
            tracer.put_annotation(key=key, value=value)
