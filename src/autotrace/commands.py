"""Subcommands contributed by other features (run, replay, compare) register here."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the feature subcommands to the CLI parser."""
