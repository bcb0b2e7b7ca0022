"""Masks PII-shaped text in log output: the last line of defence.

Code must not log values in the first place; this catches what slips through (an exception
message from a driver quoting a row, say). It masks emails, SSNs, card-like digit runs, IBANs
and phone-like numbers, in the message, its arguments, an exception's traceback and a stack.

Programs log two ways, so there are two ways in:

- ``RedactingFilter`` on ``logging`` handlers (``install``; the CLI uses it);
- ``redact_event``, a structlog processor. Airflow 3 writes task logs through structlog
  (``airflow.sdk.log``): its own events, such as a failed task's traceback, go through
  structlog's configured chain, and ``logging`` records through a handler whose formatter
  is structlog's ``ProcessorFormatter``. ``install`` puts the processor into such a
  formatter, ``install_structlog`` into structlog's chain, each just before the renderer.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

_PATTERNS = [
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    re.compile(r"\b(?:\d[ -]?){13,19}\b"),
    re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,4})?\b"),
    re.compile(r"\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"),
]

#: Event-dict keys the logging machinery fills in (never a value from the data); left as
#: they are so that a timestamp or a line number is never mistaken for a number to mask.
_BOOKKEEPING = frozenset(
    {"timestamp", "level", "logger", "logger_name", "filename", "lineno", "func_name", "loc"}
)


def redact_text(text: str) -> str:
    for pat in _PATTERNS:
        text = pat.sub("[redacted]", text)
    return text


def _exception_text(exc_info: Any) -> str | None:
    """The traceback of ``exc_info`` as logging accepts it: True (the exception being
    handled), an exception, or a ``sys.exc_info()`` triple."""
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[1] is None:
        return None
    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


class RedactingFilter(logging.Filter):
    """Rewrites each record with PII-shaped substrings masked: the message (with its
    arguments), the exception's traceback and the stack. The traceback is formatted here,
    masked and kept in ``exc_text`` with ``exc_info`` cleared, so every handler prints the
    masked text instead of formatting the exception afresh."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as is by logging itself
            message = None
        if message is not None:
            cleaned = redact_text(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        if record.exc_info:
            text = _exception_text(record.exc_info)
            record.exc_text = redact_text(text) if text is not None else record.exc_text
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    if isinstance(value, BaseException):  # a renderer would print its message
        return f"{type(value).__name__}: {redact_text(str(value))}"
    return value


def redact_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: mask PII-shaped text in every value of the event (the message,
    keyword values, a rendered exception in text or dict form, a stack). An exception not
    yet rendered (``exc_info``) is formatted here, masked and passed on as ``exception``
    text, which every structlog renderer prints as it is."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info and "exception" not in event_dict:
        text = _exception_text(exc_info)
        if text is not None:
            event_dict["exception"] = text
    for key in list(event_dict):
        if key not in _BOOKKEEPING and not key.startswith("_"):
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


def _before_renderer(processors: Any) -> Any:
    """``processors`` with ``redact_event`` just before its last entry (the renderer), in
    place for a list (loggers already made share it); None when it is there already."""
    if redact_event in processors:
        return None
    if isinstance(processors, list):
        processors.insert(max(len(processors) - 1, 0), redact_event)
        return processors
    procs = list(processors)
    procs.insert(max(len(procs) - 1, 0), redact_event)
    return tuple(procs)


def install(logger: logging.Logger | None = None) -> None:
    """Mask every handler of ``logger`` (the root logger by default): a handler whose
    formatter is structlog's ``ProcessorFormatter`` gets ``redact_event`` in its chain (it
    renders the exception itself, from the record), any other the ``RedactingFilter``."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        formatter = handler.formatter
        chain = getattr(formatter, "processors", None)
        if chain is not None and hasattr(formatter, "foreign_pre_chain"):
            changed = _before_renderer(chain)
            if changed is not None and changed is not chain:
                formatter.processors = changed  # type: ignore[union-attr]
        elif not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def install_structlog() -> None:
    """Put ``redact_event`` into structlog's configured chain, just before the renderer.
    The chain's list is changed in place, so loggers already made and cached use it too.
    Does nothing without structlog."""
    try:
        import structlog
    except ImportError:
        return
    chain = structlog.get_config()["processors"]
    changed = _before_renderer(chain)
    if changed is not None and changed is not chain:
        structlog.configure(processors=changed)
