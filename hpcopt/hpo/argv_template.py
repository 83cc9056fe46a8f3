"""The argv template of an external-command objective: ``{name}`` fields, nothing more.

Fields are the trial's parameters and :data:`BUILTIN_FIELDS`; no attribute or index access,
no nested fields, and an item naming a parameter the trial does not have (a conditional
one) is left out. Checked when the config is read (:func:`check_template`), filled for each
trial (:func:`build_argv`); never run through a shell.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

BUILTIN_FIELDS = ("trial_dir", "trial_number", "attempt", "seed", "result_file",
                  "progress_file", "params_file", "params_json", "python", "config_dir")
PARAMS_FILE = "params.json"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Inactive(Exception):
    """The item names a parameter that this trial does not have."""


class _SafeFormatter(string.Formatter):
    """Plain ``{name}`` fields only: no attribute or index access, no nested fields."""

    def get_field(self, field_name, args, kwargs):
        if not _IDENT.match(field_name):
            raise ValueError(f"only plain {{name}} fields are allowed, got {{{field_name}}}")
        if field_name not in kwargs:
            raise _Inactive(field_name)
        return kwargs[field_name], field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        return argv_text(value) if not format_spec else format(value, format_spec)


_FORMATTER = _SafeFormatter()


def argv_text(value: Any) -> str:
    """The text of one parameter value inside an argv item."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def check_template(item: str, param_names: list[str]) -> str | None:
    """A problem with one argv template item, or None (used when the config is read)."""
    try:
        parsed = list(string.Formatter().parse(item))
    except ValueError as exc:
        return f"bad template {item!r}: {exc} (write {{{{ and }}}} for literal braces)"
    known = set(param_names) | set(BUILTIN_FIELDS)
    for _text, name, spec, _conv in parsed:
        if name is None:
            continue
        if not _IDENT.match(name):
            return f"only plain {{name}} fields are allowed in {item!r}, got {{{name}}}"
        if name not in known:
            return (f"unknown field {{{name}}} in {item!r}; known: "
                    + ", ".join(sorted(known)))
        if spec and "{" in spec:
            return f"nested fields are not allowed in {item!r}"
    return None


def build_argv(template: tuple[str, ...] | list[str], fields: dict[str, Any]) -> list[str]:
    """Fill every template item; items naming an inactive parameter are left out."""
    argv = []
    for item in template:
        try:
            argv.append(_FORMATTER.vformat(item, (), fields))
        except _Inactive:
            continue
    return argv
