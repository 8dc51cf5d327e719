"""Reading AutoGen's event loggers without changing what the application's logging shows.

AutoGen logs model calls as ``LLMCallEvent`` objects at INFO on ``autogen_core.events`` and tool results
at DEBUG on ``autogen_agentchat.events``. Under a default logging setup those levels are off, so the
logger has to be opened to them. A logger *filter* (not a handler) sees each record first and then
decides whether it goes on to the handlers: records the application's own levels would have dropped
are stopped there, so e.g. ``logging.basicConfig()`` does not start printing one line per call.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

_debug = logging.getLogger("agentlightning.integrations.autogen")


class EventTap(logging.Filter):
    """Calls ``on_record`` for every record of one logger; never raises into the logging call."""

    def __init__(self, logger_name: str, level: int, on_record: Callable[[logging.LogRecord], Any]) -> None:
        super().__init__()
        self.logger = logging.getLogger(logger_name)
        self._level = level
        self._on_record = on_record
        self._restore_level: int | None = None

    def install(self) -> None:
        logger = self.logger
        if self not in logger.filters:
            logger.addFilter(self)
        if logger.getEffectiveLevel() > self._level:
            self._restore_level = logger.level
            logger.setLevel(self._level)

    def remove(self) -> None:
        logger = self.logger
        logger.removeFilter(self)
        if self._restore_level is not None and logger.level == self._level:
            logger.setLevel(self._restore_level)
        self._restore_level = None

    def _visible_level(self) -> int:
        """The level the application configured for this logger before we opened it."""
        if self._restore_level:
            return self._restore_level
        parent = self.logger.parent
        return parent.getEffectiveLevel() if parent is not None else logging.WARNING

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._on_record(record)
        except Exception:  # a bug in our mapping must never reach the agent
            _debug.debug("autogen event not recorded", exc_info=True)
        if self._restore_level is None:
            return True
        return record.levelno >= self._visible_level()
