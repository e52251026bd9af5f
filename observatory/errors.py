"""The one exception tree of the observatory.

Every error the package raises on purpose derives from ``ObservatoryError`` and
carries an exit code from the project convention (see ``domain.ExitCode``)::

    ObservatoryError                 exit 4  internal error (our own parts failed)
    +-- InputError                   exit 2  bad input: CLI args, API bodies, versions
    |   +-- ConfigError              exit 2  invalid configuration file or environment
    |   +-- NotFoundError            exit 2  unknown run, build, scenario, alert
    |   +-- ForbiddenTargetError     exit 2  load target outside the allowed list
    +-- StoreError                   exit 4  the database failed
    +-- BuildError                   exit 4  a gateway could not be provisioned / started
    +-- LoadError                    exit 4  the load generator failed
    +-- NotifyError                  exit 4  an alert could not be delivered

Adapters translate third-party exceptions at the boundary
(``raise StoreError(...) from exc``); messages carry the offending value and,
where there is a finite set, what is accepted.
"""

from __future__ import annotations


class ObservatoryError(Exception):
    """Root of all errors raised by the observatory on purpose."""

    exit_code = 4


class InputError(ObservatoryError):
    """The caller asked for something invalid; nothing was written."""

    exit_code = 2


class ConfigError(InputError):
    """The configuration file or environment is invalid."""


class NotFoundError(InputError):
    """A named thing (run, build, scenario, alert) does not exist."""


class ForbiddenTargetError(InputError):
    """A load target is neither loopback nor in the configured allowed targets."""


class StoreError(ObservatoryError):
    """The database failed underneath us."""


class BuildError(ObservatoryError):
    """A gateway build could not be provisioned, started or stopped."""


class LoadError(ObservatoryError):
    """The load generator failed (not the gateway)."""


class NotifyError(ObservatoryError):
    """An alert could not be delivered."""
