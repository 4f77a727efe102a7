"""Argument types: numbers checked as argparse reads them, with messages a person can act on."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["at_least", "between", "fraction", "not_negative", "positive"]


def at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = at_least(low)(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, not {value}")
        return value

    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def fraction() -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
        return value

    return parse


def not_negative() -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be at least 0, not {text}")
        return value

    return parse


def positive(kind: type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    return parse
