"""The log redaction filter: PII-shaped text in a record's message, its arguments, an
exception's traceback and a stack comes out masked through real handlers, both Python's
``logging`` and the structlog chains Airflow 3 writes task logs with."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from veilflow.log_redaction import RedactingFilter, install, redact_event

EMAIL = "alice.smith@example.org"
SSN = "123-45-6789"
CARD = "4111 1111 1111 1111"
PHONE = "415-555-0134"
PII = (EMAIL, SSN, CARD, PHONE)


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own with one plain stream handler, redaction installed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("veilflow.tests.redaction")
    saved = (log.handlers[:], log.propagate, log.level)
    log.handlers, log.propagate = [handler], False
    log.setLevel(logging.INFO)
    install(log)
    yield log, stream
    log.handlers, log.propagate = saved[0], saved[1]
    log.setLevel(saved[2])


def fail_with_pii() -> None:
    # The kind of message a driver writes: it quotes the row.
    raise ValueError(f"duplicate key value: Key (ssn, card)=({SSN}, {CARD})")


def test_message_args_and_traceback_are_masked(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = logger
    try:
        fail_with_pii()
    except ValueError:
        log.exception("chunk of %s failed", EMAIL)
    out = stream.getvalue()
    assert "chunk of [redacted] failed" in out
    assert "Traceback (most recent call last)" in out and "ValueError: duplicate key" in out
    assert "Key (ssn, card)=([redacted], [redacted])" in out
    for value in PII:
        assert value not in out


def test_stack_is_masked(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = logger
    log.warning("call back on 415-555-0134", stack_info=True)  # the stack quotes this line too
    out = stream.getvalue()
    assert "Stack (most recent call last)" in out and "test_stack_is_masked" in out
    assert PHONE not in out


class ExcInfoFirst(logging.Formatter):
    """Formats the live exception whenever the record has one, as JSON formatters do."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            return text + "\n" + self.formatException(record.exc_info)
        return text + ("\n" + record.exc_text if record.exc_text else "")


def test_every_handler_prints_the_masked_traceback(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    """The filter keeps the masked traceback in ``exc_text`` and clears ``exc_info``, so a
    later handler cannot format the exception afresh from the live object."""
    log, first = logger
    second = io.StringIO()
    handler = logging.StreamHandler(second)  # no filter of its own, after the first
    handler.setFormatter(ExcInfoFirst())
    log.addHandler(handler)
    try:
        fail_with_pii()
    except ValueError:
        log.error("failed", exc_info=True)
    for out in (first.getvalue(), second.getvalue()):
        assert "ValueError: duplicate key" in out
        for value in PII:
            assert value not in out


def test_filter_is_installed_once(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, _ = logger
    install(log)
    assert sum(isinstance(f, RedactingFilter) for f in log.handlers[0].filters) == 1


def test_processor_renders_an_exception_masked_for_the_console_renderer() -> None:
    """``airflow dags test`` writes task logs with structlog's console renderer, which
    formats ``exc_info`` itself: the processor hands it masked text instead."""
    try:
        fail_with_pii()
    except ValueError as exc:
        event = {"event": f"Task failed for {EMAIL}", "exc_info": exc, "ssn": SSN}
    render = structlog.dev.ConsoleRenderer(colors=False)
    out = render(None, "error", redact_event(None, "error", event))
    assert "Task failed for [redacted]" in out and "ValueError: duplicate key" in out
    for value in PII:
        assert value not in out


AIRFLOW_TASK_PROCESS = textwrap.dedent(
    """
    import io, logging, sys
    import structlog
    from airflow.sdk.log import configure_logging

    # As Airflow's task runner sets up a task process: JSON lines to the supervisor.
    out = io.BytesIO()
    configure_logging(json_output=True, output=out, sending_to_supervisor=True)
    task_log = structlog.get_logger(logger_name="task")
    task_log.info("starting")  # this logger is made and cached before redaction is installed

    from veilflow.airflow.operators import redact_task_logs
    redact_task_logs()
    redact_task_logs()  # idempotent

    EMAIL, SSN, CARD = sys.argv[1:4]
    def fail():
        raise ValueError(f"duplicate key value: Key (ssn, card)=({SSN}, {CARD})")
    try:
        fail()
    except ValueError:
        task_log.exception("Task failed with exception")  # what the task runner logs
        logging.getLogger("veilflow.pipeline").exception("chunk of %s failed", EMAIL)
    logging.getLogger("psycopg").warning("row %s", EMAIL, stack_info=True)
    sys.stdout.write(out.getvalue().decode())
    """
)


def test_airflow_task_process_log_is_masked(tmp_path: Path) -> None:
    """The task process's own logging setup (``airflow.sdk.log.configure_logging`` as the
    task runner calls it), in a fresh interpreter: Airflow's structured exception, a
    ``logging`` record with a traceback and one with a stack all come out masked, and the
    exception keeps the structured form the Airflow UI shows."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}  # loggers cache
    env["AIRFLOW_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", AIRFLOW_TASK_PROCESS, EMAIL, SSN, CARD],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    by_event = {e["event"]: e for e in events}
    task_failed = by_event["Task failed with exception"]
    assert isinstance(task_failed["exception"], list)  # structured, as Airflow renders it
    assert "Key (ssn, card)=([redacted], [redacted])" in json.dumps(task_failed["exception"])
    chunk = by_event["chunk of [redacted] failed"]
    assert "[redacted]" in json.dumps(chunk["exception"])
    assert "stack" in by_event["row [redacted]"]
    for value in PII:
        assert value not in done.stdout
