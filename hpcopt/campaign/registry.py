"""The one registry of campaign kinds: cli, sandbox, lifecycle and report look kinds up here.

Adding a kind: write its :class:`~hpcopt.campaign.contract.CampaignKind` (and its report
hooks) and add one line to :data:`KINDS`; nothing else names kinds.  Importing this module
imports every kind module, which imports neither MPI nor Optuna (they load lazily).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ResultFileError, UsageError
from ..hpo.kind import HPO
from ..hpo.pbt.kind import PBT
from ..sweep.kind import SWEEP
from ..temper.kind import TEMPER
from .contract import CampaignKind

#: every kind by name; the order is the order of the subcommands in `hpcopt --help`
KINDS: dict[str, CampaignKind] = {k.name: k for k in (SWEEP, TEMPER, HPO, PBT)}


def get(name: str) -> CampaignKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown campaign kind {name!r} (known: {', '.join(KINDS)})") from None


def commands() -> dict[str, list[CampaignKind]]:
    """Subcommand -> the kinds it runs (hpo runs hpo and pbt), in registry order."""
    out: dict[str, list[CampaignKind]] = {}
    for kind in KINDS.values():
        out.setdefault(kind.command, []).append(kind)
    return out


def for_config(command: str, root) -> CampaignKind:
    """The kind a config given to `command` belongs to (the first kind that selects it)."""
    candidates = commands().get(command)
    if not candidates:
        raise UsageError(f"unknown campaign command {command!r}")
    for kind in candidates:
        if kind.selects(root):
            return kind
    return candidates[-1]


def command_of(data: Mapping[str, Any]) -> str:
    """The subcommand a parsed config is for: the kind whose signature table it has, else
    the default kind's (e.g. `hpcopt submit`, which is given no subcommand)."""
    for kind in KINDS.values():
        if kind.signature_table is not None and kind.signature_table in data:
            return kind.command
    return next(k.command for k in KINDS.values() if k.signature_table is None)


def of_file(attrs: Mapping[str, Any], table_attrs: Mapping[str, Any] | None = None,
            path: object = "") -> CampaignKind:
    """The kind of a result file from its attributes: ``campaign`` (format 2 and later),
    else ``kind`` with the main table's ``scheduler`` attribute for format-1 PBT files.
    Never guessed from the columns."""
    name = attrs.get("campaign")
    if not isinstance(name, str):
        family = attrs.get("kind")
        if not isinstance(family, str):
            raise ResultFileError(f"{path}: the 'kind' attribute is not a string")
        name = family
        if family == "hpo" and (table_attrs or {}).get("scheduler") == "pbt":
            name = "pbt"
    kind = KINDS.get(name)
    if kind is None:
        raise ResultFileError(f"{path}: unknown campaign kind {name!r} (this hpcopt knows "
                              f"{', '.join(KINDS)})")
    return kind


def families() -> tuple[str, ...]:
    """The values of the `kind` attribute (the report --json contract)."""
    return tuple(dict.fromkeys(k.family for k in KINDS.values()))
