"""Errors that stages turn into a one-line message and a non-zero exit."""

from __future__ import annotations


class LifecycleError(Exception):
    """A problem the user can fix: the message names the file, column or key, the rule and the fix."""


class ParamsError(LifecycleError):
    """params.yaml has an unknown, missing or mistyped key."""


class DataError(LifecycleError):
    """An input file or frame breaks a rule (unreadable, empty, missing column, ...)."""


class GateError(LifecycleError):
    """A quality gate (validation, promotion, drift, parity) failed."""


class StorageError(LifecycleError):
    """A write failed for lack of room: the disk or the quota is full, or the file exceeds the size limit."""
