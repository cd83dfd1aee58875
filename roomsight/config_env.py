"""Where settings come from besides their defaults (see roomsight.config): the environment's
`ROOMSIGHT_` variables, but for those in NOT_SETTINGS, as nested keys merged over the config file's; and
a validation error as lines naming each key with the variable that sets it, never echoing a secret."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from roomsight.errors import ConfigError
from roomsight.plain_errors import plain_words

ENV_PREFIX = "ROOMSIGHT_"
# Variables with the prefix that are not settings: the file to read, and the tests' and benchmarks' knobs
# (where the real photos are, how many schemathesis and fuzzing examples, where page screenshots go, how many
# simulated rollouts or runs the analysis, lost-photos and weighted benchmarks make). A shell that sets one for
# a benchmark must still run the CLI, so they are passed over rather than refused as unknown keys. A test finds
# every one the tests and benchmarks read.
NOT_SETTINGS = frozenset({"ROOMSIGHT_CONFIG", "ROOMSIGHT_REAL_DATA", "ROOMSIGHT_SCHEMATHESIS_EXAMPLES",
                          "ROOMSIGHT_FUZZ_EXAMPLES", "ROOMSIGHT_SCREENSHOTS", "ROOMSIGHT_BENCH_ANALYSIS_ROLLOUTS",
                          "ROOMSIGHT_BENCH_LOST_ROLLOUTS", "ROOMSIGHT_BENCH_WEIGHTED_RUNS",
                          "ROOMSIGHT_TEST_MODELS"})


def env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turn ROOMSIGHT_SECTION__KEY=value into nested dicts; pydantic does the type conversion."""
    out: dict[str, Any] = {}
    # Sorted, a section given whole as JSON (ROOMSIGHT_SERVE) comes before the variables of its keys
    # (ROOMSIGHT_SERVE__HOST), which then amend it, whatever order the environment lists them in.
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                whole = ENV_PREFIX + "__".join(parts[:i + 1]).upper()
                raise ConfigError(f"invalid configuration:\n  {'.'.join(parts[:i + 1])} (env {whole}): not a mapping, "
                                  f"but {name} sets a key in it")
        node[parts[-1]] = _parse_value(value)
    return out


def _parse_value(value: str) -> Any:
    """Lists and mappings come as JSON (ROOMSIGHT_REVIEW__TOKENS='{"ann": "..."}'); the rest as text."""
    if value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over`'s keys over `base`'s, mapping by mapping."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


_SECRET_WORDS = ("password", "token", "url", "uri", "webhook")


def describe_error(err: ValidationError, file: Any = None, from_file: Any = None, from_env: Any = None) -> str:
    """Each problem as a line naming the key and where it was set: the variable that sets it, or the config
    `file` when its `from_file` values, and not the environment's `from_env`, hold the key."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        # A list is set whole, as JSON: the variable is the list's, whichever item is wrong.
        listed = next((i for i, p in enumerate(e["loc"]) if isinstance(p, int)), len(e["loc"]))
        env = ENV_PREFIX + "__".join(str(p) for p in e["loc"][:listed]).upper()
        # A key written in the file was named by a variable nobody set, as if it came from the environment.
        where = (f"in {file}" if file is not None and _holds(from_file, e["loc"][:listed])
                 and not _holds(from_env, e["loc"][:listed]) else f"env {env}")
        secret = any(w in key.lower() for w in _SECRET_WORDS)
        shown = "" if "input" not in e or isinstance(e["input"], dict) or secret else f" (got {e['input']!r})"
        # No list example: `[a, b]`, right in YAML, is not JSON, which a variable's list must be.
        said = plain_words(e, "setting", of_keys=True) + (
            _broken_json(e.get("input")) if where.startswith("env") else "")
        lines.append(f"  {key} ({where}): {said}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)


def _broken_json(value: Any) -> str:
    """Why a variable meant as JSON was read as text: "should be a list" alone hid a missing bracket. Says where,
    never the value (it may hold a token or a URL)."""
    if not isinstance(value, str) or value.strip()[:1] not in ("[", "{"):
        return ""
    try:
        json.loads(value)
    except json.JSONDecodeError as exc:
        return f"; the value is not valid JSON ({exc.msg} at character {exc.pos})"
    return ""


def _holds(values: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True
