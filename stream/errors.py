"""One exception hierarchy for riverguard; each error carries the exit code the CLI returns."""

from __future__ import annotations


class RiverguardError(Exception):
    """Base of every error riverguard raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(RiverguardError):
    """The configuration is invalid: the message names the key and the file."""

    exit_code = 2


class SnapshotError(RiverguardError):
    """A snapshot could not be written, found or read."""

    exit_code = 3


class SnapshotRefused(SnapshotError):
    """A snapshot failed its signature or format check and was not unpickled."""


class ModelError(RiverguardError):
    """The model could not be built from the configuration."""

    exit_code = 2


class AdminError(RiverguardError):
    """A call to a running service's admin API failed."""

    exit_code = 4


class OutputLost(RiverguardError):
    """Predictions or dead letters were not delivered: the service must stop without a snapshot."""

    exit_code = 5
