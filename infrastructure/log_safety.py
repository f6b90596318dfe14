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

Structured lines (issue 20): ``CONTRACTS_LOG_FORMAT=json`` writes one JSON object per line
(``JsonFormatter``: time, level, logger, message, the request id of the request being served,
and the record's ``fields``); ``text`` (the default) writes the same as ``key=value`` after the
message. A record carries structured data only through ``extra={"fields": {...}}``: nothing else
of a record (no argument, no attribute a library sets) is written, so what reaches the log is
what the code chose to put there. ``request_id`` is a context variable set by the API's request
middleware (``api.observability``); the anyio threads that run sync routes copy the context, so
every line written while a request is served names it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

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
LogFormat = Literal["text", "json"]

# The id of the request this context serves (set by ``api.observability.RequestMiddleware``).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def _safe(value: Any) -> Any:
    """A field value as written: numbers, booleans and None as they are, anything else as escaped text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return escape_controls(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ms), ``level``, ``logger``, ``message``, ``pid``,
    ``request_id`` (when serving a request), the record's ``fields``, and ``exception`` (the
    traceback, as one string) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "pid": record.process,  # which process of ``serve --workers N`` wrote it
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid is not None:
            line["request_id"] = rid
        for key, value in _fields(record).items():
            if key not in line:
                line[key] = _safe(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``FORMAT``, then ``request_id=...`` and each field as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - the stdlib's name
        text = super().formatMessage(record)
        rid = getattr(record, "request_id", None) or request_id.get()
        extra = ([f"request_id={rid}"] if rid is not None else []) + [
            f"{key}={_safe(value)}" for key, value in _fields(record).items() if key != "request_id"]
        return f"{text} {' '.join(extra)}" if extra else text


def formatter(kind: LogFormat) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()


def install(limit: int = 20, window: float = 10.0) -> None:
    """Both filters on every handler of the root and uvicorn loggers. Idempotent."""
    limiter, escaper = RepeatLimiter(limit, window), EscapeControls()
    handlers = {h for name in ("", *UVICORN_LOGGERS) for h in logging.getLogger(name).handlers}
    for handler in handlers:
        if any(isinstance(f, EscapeControls) for f in handler.filters):
            continue
        handler.addFilter(limiter)
        handler.addFilter(escaper)


def configure(level: str = "INFO", repeat_limit: int = 20, repeat_window: float = 10.0,
              log_format: LogFormat = "text") -> None:
    """The logging of a ``contracts`` process: one stderr handler on the root logger (uvicorn runs
    with ``log_config=None``, so its loggers propagate here), with both filters and the chosen
    format (``CONTRACTS_LOG_FORMAT``)."""
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    root = logging.getLogger()
    root.setLevel(level)
    chosen = formatter(log_format)
    for handler in root.handlers:
        handler.setFormatter(chosen)
    install(repeat_limit, repeat_window)
