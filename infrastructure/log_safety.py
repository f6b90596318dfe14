"""Log lines that a client cannot forge or flood (issue 14, items 6 and 7).

- ``EscapeControls``: every record's message (after ``%`` formatting, so client text passed as
  an argument is covered too) has its control characters escaped (``\\n`` -> ``\\x0a``, also
  CR, NUL, ESC, DEL, C1 controls and the Unicode line and paragraph separators): one record is
  one line, always. A traceback stays multi-line but every line of it is indented, so no line
  of it can pass for a record of its own.
- ``RepeatLimiter``: the same warning or error (logger, level and message template) is let through at most
  ``limit`` times per ``window`` seconds; the others are counted and the count is added to the
  next one let through ("... [37 similar lines suppressed]"). A process out of descriptors once
  wrote 83 MB of "Too many open files" in 16 s.

``install(settings)`` puts both on every handler of the root logger and of uvicorn's loggers
(handler filters see the records of child loggers too; logger filters would not). The API also
never puts a raw path in a message (``api.errors`` logs the route template).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                        text)


class EscapeControls(logging.Filter):
    """Escape control characters in the message; indent traceback lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_escaped", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = escape_controls(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = "\n".join("    " + escape_controls(line) for line in record.exc_text.splitlines())
        if record.stack_info:
            record.stack_info = "\n".join("    " + escape_controls(line) for line in record.stack_info.splitlines())
        record._escaped = True
        return True


class RepeatLimiter(logging.Filter):
    """At most ``limit`` records with the same (logger, level, template) per ``window`` seconds, for
    warnings and errors (floods are failures repeating); INFO lines, one per fired deadline or
    per request, are the service's normal record and are never dropped."""

    def __init__(self, limit: int = 20, window: float = 10.0) -> None:
        super().__init__()
        self.limit, self.window = limit, window
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[Any]] = {}  # key -> [window start, count, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or self.limit <= 0 or getattr(record, "_limited", None) is not None:
            return bool(getattr(record, "_limited", True))
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        key = (record.name, record.levelno, template[:200])
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                suppressed = entry[2] if entry is not None else 0
                self._seen[key] = [now, 1, 0]
                if len(self._seen) > 10_000:  # bounded: forget the oldest windows
                    for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:5_000]:
                        del self._seen[old]
            else:
                entry[1] += 1
                if entry[1] > self.limit:
                    entry[2] += 1
                    record._limited = False
                    return False
                suppressed = 0
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} similar lines suppressed in the last {self.window:g} s]"
        record._limited = True
        return True


FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def install(limit: int = 20, window: float = 10.0) -> None:
    """Both filters on every handler of the root and uvicorn loggers. Idempotent."""
    limiter, escaper = RepeatLimiter(limit, window), EscapeControls()
    handlers = {h for name in ("", *UVICORN_LOGGERS) for h in logging.getLogger(name).handlers}
    for handler in handlers:
        if any(isinstance(f, EscapeControls) for f in handler.filters):
            continue
        handler.addFilter(limiter)
        handler.addFilter(escaper)


def configure(level: str = "INFO", repeat_limit: int = 20, repeat_window: float = 10.0) -> None:
    """The logging of a ``contracts`` process: one stderr handler on the root logger (uvicorn runs
    with ``log_config=None``, so its loggers propagate here), with both filters."""
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    logging.getLogger().setLevel(level)
    install(repeat_limit, repeat_window)
