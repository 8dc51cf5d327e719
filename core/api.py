"""The process-wide tracer and the one-line helpers built on it.

``configure()`` is optional: the first span creates a tracer that exports to
``$AGENTLIGHTNING_ENDPOINT`` (default 127.0.0.1:4747), spooling locally if no server answers.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from typing import Any, Callable, Iterator, Mapping, Optional, TypeVar, Union

from agentlightning.core import context as ctx
from agentlightning.core.exporter import ExporterConfig, ExporterStats, SpanExporter
from agentlightning.core.tracer import ActiveSpan, SpanSink, Tracer
from agentlightning.v1 import spans_pb2

_lock = threading.Lock()
_tracer: Optional[Tracer] = None

F = TypeVar("F", bound=Callable[..., Any])


def configure(endpoint: Optional[str] = None, *, sink: Optional[SpanSink] = None, **exporter_settings: Any) -> Tracer:
    """Set the process-wide tracer: export to ``endpoint`` (or use ``sink``, e.g. a MemorySink)."""
    global _tracer
    with _lock:
        old = _tracer
        if sink is None:
            settings = dict(exporter_settings)
            if endpoint:
                settings["endpoint"] = endpoint
            sink = SpanExporter(ExporterConfig.from_env(**settings))
        _tracer = Tracer(sink)
    if old is not None and isinstance(old.sink, SpanExporter) and old.sink is not sink:
        old.sink.close()
    return _tracer


def get_tracer() -> Tracer:
    global _tracer
    if _tracer is None:
        with _lock:
            if _tracer is None:
                _tracer = Tracer(SpanExporter(ExporterConfig.from_env()))
    return _tracer


def flush(timeout_s: float = 30.0) -> bool:
    """Wait until every finished span is acked by the server or safely spooled (integrations'
    background workers are drained first, so their spans are included)."""
    import time

    from agentlightning.core.deferred import drain_all

    deadline = time.monotonic() + timeout_s
    drained = drain_all(timeout_s)
    sink = get_tracer().sink
    flushed = sink.flush(max(0.0, deadline - time.monotonic())) if isinstance(sink, SpanExporter) else True
    return drained and flushed


def shutdown(timeout_s: float = 10.0) -> None:
    global _tracer
    with _lock:
        tracer, _tracer = _tracer, None
    if tracer is not None and isinstance(tracer.sink, SpanExporter):
        tracer.sink.close(timeout_s)


def exporter_stats() -> Optional[ExporterStats]:
    sink = get_tracer().sink
    return sink.stats() if isinstance(sink, SpanExporter) else None


# Attributes on a rollout's root span that group live rollouts (LightningRL reads them).
GROUP_ID_ATTRIBUTE = "agentlightning.group_id"
TASK_ID_ATTRIBUTE = "agentlightning.task_id"


@contextlib.contextmanager
def rollout(rollout_id: Optional[str] = None, attempt_id: Optional[str] = None, *, group_id: str = "",
            name: str = "rollout", agent_name: str = "", final_reward: Optional[float] = None,
            task_id: str = "") -> Iterator[ctx.RolloutContext]:
    """Run a block as one rollout: every span inside carries its ids, under one root AGENT span.

    ``final_reward`` is recorded as the primary reward named "final" when the block ends normally;
    ``group_id`` / ``task_id`` are recorded on the root span so live rollouts of the same task can
    be compared with each other (GRPO groups) without a queue."""
    context = ctx.new_rollout_context(rollout_id, attempt_id, group_id)
    attributes = {key: value for key, value in ((GROUP_ID_ATTRIBUTE, group_id), (TASK_ID_ATTRIBUTE, task_id))
                  if value}
    with ctx.use_rollout(context):
        with get_tracer().span(name, spans_pb2.SPAN_KIND_AGENT, agent_name=agent_name,
                               attributes=attributes or None):
            yield context
            if final_reward is not None:
                emit_reward(final_reward, name="final")


def span(name: str, kind: int = spans_pb2.SPAN_KIND_OTHER, **kwargs: Any) -> contextlib.AbstractContextManager[ActiveSpan]:
    return get_tracer().span(name, kind, **kwargs)


def emit_reward(value: float, name: str = "reward", **kwargs: Any) -> bool:
    """Record a reward for the current rollout (several names = several dimensions).

    Keyword arguments go to ``Tracer.emit_reward``: ``primary`` (default True: the dimension
    training optimises; pass ``primary=False`` for dimensions that are only recorded), ``source``,
    ``label``, ``rollout`` (attach to another rollout, e.g. feedback arriving later)."""
    return get_tracer().emit_reward(value, name, **kwargs)


def emit_rewards(values: Mapping[str, float], primary: Optional[str] = None, **kwargs: Any) -> bool:
    """Record several named reward dimensions at once, exactly one of them primary: ``primary``
    names it (default: the first). Returns True if every dimension was recorded."""
    if not values:
        return False
    if primary is None:
        primary = next(iter(values))
    elif primary not in values:
        raise ValueError(f"primary dimension {primary!r} is not one of {list(values)}")
    ok = True
    for name, value in values.items():
        ok = emit_reward(value, name=name, primary=name == primary, **kwargs) and ok
    return ok


def _emit_returned(value: Any, name: str, primary: Union[bool, str]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        # A decorator never raises into the agent: an unknown primary name falls back to the first key.
        emit_rewards(value, primary=primary if isinstance(primary, str) and primary in value else None)
    else:
        emit_reward(value, name=name, primary=bool(primary))


def reward(func: Optional[F] = None, *, name: str = "reward", primary: Union[bool, str] = True) -> Any:
    """Decorator: emit the function's return value as a reward, and return it unchanged.

    A number is emitted as dimension ``name`` (primary unless ``primary=False``); a mapping of
    name -> number is emitted as several dimensions, the one named by ``primary`` (a string;
    default the first key) being primary."""

    def wrap(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                value = await fn(*args, **kwargs)
                _emit_returned(value, name, primary)
                return value

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = fn(*args, **kwargs)
            _emit_returned(value, name, primary)
            return value

        return wrapper  # type: ignore[return-value]

    return wrap(func) if func is not None else wrap
