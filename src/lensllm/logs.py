"""Logging for workflow jobs: messages go to the job's log file and to stderr."""

from __future__ import annotations

import logging
import os
import sys


def log_to(path: str | os.PathLike) -> None:
    """Send INFO and above to `path` (the rule's `log:`) and to stderr."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    handlers = [logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)
