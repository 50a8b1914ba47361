"""Shared bits of the command modules."""

from __future__ import annotations

import argparse
import logging

FORMATTER = argparse.RawDescriptionHelpFormatter


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
