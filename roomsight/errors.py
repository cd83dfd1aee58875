"""Every error roomsight raises on purpose, in one tree (modelled on httpx's `_exceptions.py`).

    Exception
    ├── UserError ............................ the user's to fix: the CLI prints the message, exits 1
    │   ├── ConfigError (ValueError) ......... a setting is missing, unknown or invalid
    │   ├── DurationError (ValueError) ....... '90x' where a duration ('90s', '2h') was wanted
    │   ├── DatabaseUnavailable (ConnectionError)
    │   ├── SchemaMismatch (RuntimeError) .... a column that cannot be added to the rows already held
    │   ├── RegistryError (RuntimeError) ..... MLflow's model registry refused or is out of reach: `status` (503)
    │   │   └── BadModelUri .................. a model URI that is malformed or names no version
    │   ├── RegistrationError (LookupError) .. a part's name: unknown, or registered twice
    │   ├── PackError ........................ a model pack with missing or damaged files
    │   ├── DataError (ValueError) ........... training data that cannot be trained on
    │   ├── RulesError (ValueError) .......... caption rules or captions that cannot be used
    │   ├── BackboneError (RuntimeError) ..... a backbone's weights missing or not fitting
    │   ├── DriftError ....................... a drift report that cannot be made
    │   ├── MailError ........................ email not configured, or refused by the server
    │   ├── PlanError (ValueError) ........... a rollout plan that is invalid: `key`, `step`
    │   ├── TransitionError (ValueError) ..... a command that does not apply where the rollout stands
    │   ├── RolloutError (RuntimeError) ...... a control-plane command refused: `status` (409)
    │   │   └── GatesFailed .................. a promotion whose conditions did not pass: `results`
    │   ├── DemoStuck ........................ the demo's evidence did not come within its traffic
    │   ├── ReviewError ...................... a review-page request refused: `status`
    │   └── BadRequestId (ValueError) ........ a request id that is not a UUID
    ├── RequestError ......................... a prediction request refused: `status`, `reason`
    ├── BadAnswer (ValueError) ............... a model's answer that is not one: the model failed
    ├── ImageRejected (ValueError) ........... bytes that are not an acceptable image: `status`
    ├── StateConflict (RuntimeError) ......... the routing state changed since it was read
    ├── RecordLost (RuntimeError) ............ a change's MLflow run deleted before it was kept: it waits
    └── NotReady ............................. a new routing state that cannot be served yet

Only UserError's branch reaches people as a message without a traceback; anything else that escapes a
command is a bug and keeps its traceback. An API maps an error to a status by its class (or its `status`
field), never by catching a builtin like ValueError, which a bug raises as readily as a refusal. The
builtin second bases are kept for callers (pydantic validators, tests) that expect them.

This module imports nothing of roomsight, so every package can raise from it without a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


def first_line(exc: BaseException) -> str:
    """A library's error message cut to its first line, for a one-line UserError that quotes it."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class UserError(Exception):
    """Bad input, configuration or state, with a message that says what to do."""


# -- the kernel: settings, storage, registries, packs -------------------------------------------------
class ConfigError(UserError, ValueError):
    """A setting is missing, unknown or invalid; the message names the key."""


class DurationError(UserError, ValueError):
    """A text that is not a positive duration ('90s', '30m', '24h', '7d', '2w' or plain seconds)."""


class DatabaseUnavailable(UserError, ConnectionError):
    """The database cannot be reached, opened or driven; the message names the URL without its password."""


class SchemaMismatch(UserError, RuntimeError):
    """The database lacks a column that cannot be added to the rows it already holds."""


class RegistryError(UserError, RuntimeError):
    """MLflow's model registry refused an operation or is out of reach. One that reaches an API is the
    registry being down, which a retry may cure (`status` 503)."""

    status = 503


class BadModelUri(RegistryError):
    """A model URI that is not one (models:/NAME/VERSION or models:/NAME@ALIAS) or names no registered
    version. The control plane turns it into a RolloutError (409): no retry cures it."""


class RegistrationError(UserError, LookupError):
    """A part's name (backbone, descriptor, out-of-domain rule, painter) that is not registered (the
    message lists the known ones), or one registered twice. Not MLflow's registry: see RegistryError."""


class PackError(UserError):
    """A model pack whose files are missing or damaged: an artifact store that lost or half-copied them."""


# -- training -----------------------------------------------------------------------------------------
class DataError(UserError, ValueError):
    """The data (or the training options) cannot be trained on; the message says what to fix."""


class RulesError(UserError, ValueError):
    """The caption rules file or the captions CSV cannot be used; the message says what to fix."""


class BackboneError(UserError, RuntimeError):
    """A backbone's weights are missing or do not fit; the message says where they were looked for."""


# -- monitoring ---------------------------------------------------------------------------------------
class DriftError(UserError):
    """A drift report cannot be made (no model, no reference statistics, too few logged predictions)."""


class MailError(UserError):
    """Email is not configured, or the server refused it; the message says which, without secrets."""


class DemoStuck(UserError):
    """A step of `rollout demo` whose evidence did not come within the traffic the demo allows it; the
    message names the conditions still open."""


class ReviewError(UserError):
    """A request the review queue refuses; `status` is the HTTP status the page gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BadRequestId(UserError, ValueError):
    """A request id that is not a UUID: it could name a path outside the photo store."""


# -- rollout ------------------------------------------------------------------------------------------
class PlanError(UserError, ValueError):
    """The plan file is missing or invalid; the message names the step and key. `key` is the dotted key
    of the (first) problem, e.g. "steps.2.gradual.percent", and `step` the index of its step; both None
    when the problem is the file itself."""

    def __init__(self, message: str, key: str | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.step = step


class TransitionError(UserError, ValueError):
    """The command does not apply to where the rollout stands; the message says what would."""


class RolloutError(UserError, RuntimeError):
    """A control-plane command cannot be carried out; the message says why and what to do instead.
    `status` is the HTTP status the control-plane API answers it with."""

    status = 409


class _Judged(Protocol):
    """A judged condition (rollout.conditions.ConditionResult), as much as GatesFailed reads of it."""

    passed: bool

    def describe(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class GatesFailed(RolloutError):
    """A promotion whose conditions did not all pass; `target` is the step it aimed at and `results` holds
    each condition with its numbers."""

    def __init__(self, target: str, results: Sequence[_Judged]) -> None:
        held = [r for r in results if not r.passed]
        super().__init__(f"promotion to {target} refused: {len(held)} condition(s) not passed: "
                         + "; ".join(r.describe() for r in held) + " (use --force --reason to override)")
        self.target = target
        self.results = list(results)


# -- serving: refusals answered over HTTP, and signals between its parts ------------------------------
class RequestError(Exception):
    """A prediction request the API refuses: `status` (4xx, or 503) and `message` go to the client as
    `{"error": message}`; `reason` labels the refusal in the metrics."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


class BadAnswer(ValueError):
    """A model replica answered something the ingress may not use (a bad export, a replica in a bad
    state): handled like the model raising, never passed on to a client."""


class ImageRejected(ValueError):
    """The bytes are not an acceptable image; the message says why and `status` is the 4xx to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class StateConflict(RuntimeError):
    """Someone else changed the rollout state since it was read (the compare-and-swap lost)."""


class RecordLost(RuntimeError):
    """The MLflow run just written for a change was deleted before it was kept (another process found it
    unfinished): it is no record, and the change's outbox row waits to be caught up on."""


class NotReady(Exception):
    """Raised by a `prepare` hook: the new routing state must not be routed on yet (its champion cannot
    be loaded, e.g. the MLflow store is down); keep the current one and try again at the next poll."""
