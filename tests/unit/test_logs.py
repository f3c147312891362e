"""Logging: stage tags, the production DEBUG filter and JSON lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from loopml.core.logs import setup_logging, stage_context


def _flush() -> None:
    for handler in logging.getLogger("loopml").handlers:
        handler.flush()


def test_records_carry_the_stage(tmp_path: Path) -> None:
    log_file = setup_logging(tmp_path, "DEBUG", console=False)
    with stage_context("train"):
        logging.getLogger("loopml.test").info("hello")
    _flush()
    line = log_file.read_text().strip().splitlines()[-1]
    assert "[train]" in line and "hello" in line and "INFO" in line


def test_production_drops_debug(tmp_path: Path) -> None:
    log_file = setup_logging(tmp_path, "DEBUG", production=True, console=False)
    logger = logging.getLogger("loopml.test")
    logger.debug("invisible")
    logger.warning("visible")
    _flush()
    text = log_file.read_text()
    assert "visible" in text and "invisible" not in text


def test_json_lines(tmp_path: Path) -> None:
    log_file = setup_logging(tmp_path, "INFO", json_lines=True, console=False)
    with stage_context("ingest"):
        logging.getLogger("loopml.test").error("boom")
    _flush()
    record = json.loads(log_file.read_text().strip().splitlines()[-1])
    assert record["stage"] == "ingest"
    assert record["level"] == "ERROR"
    assert record["message"] == "boom"
