"""Where a campaign's files live: the result file and every companion file beside it.

One rule for every kind: the result file is ``-o FILE`` (taken from the current
directory) or the config's ``[output] path`` (taken from the config file's directory),
made absolute; every companion file is named after it, in its directory:

    FILE            the result file (HDF5)
    FILE.log        the log of every run (appended)
    FILE.lock       the writer lock (one campaign writes a file at a time)
    FILE.journal    the HPO study's default storage (Optuna journal)
    STEM_trials/    external-command trial folders (HPO)
    STEM_pbt/       PBT checkpoints

So ``-o`` moves all of them together, and two result files never share a companion
file unless the config names one explicitly (e.g. ``[hpo] storage`` for array tasks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CampaignPaths:
    output: Path        # absolute

    @classmethod
    def resolve(cls, output_option: str | None, config_output: Path) -> "CampaignPaths":
        """`-o` (relative to the current directory) wins over the config's path (already
        resolved against the config's directory)."""
        chosen = Path(output_option).expanduser() if output_option else Path(config_output)
        return cls(Path(_absolute(chosen)))

    @property
    def log(self) -> Path:
        return self._beside(".log")

    @property
    def lock(self) -> Path:
        from ..store.lock import lock_path     # the lock's own module names its file
        return lock_path(self.output)

    @property
    def journal(self) -> Path:
        return self._beside(".journal")

    @property
    def trials_dir(self) -> Path:
        return self.output.with_name(f"{self.output.stem}_trials")

    @property
    def pbt_dir(self) -> Path:
        return self.output.with_name(f"{self.output.stem}_pbt")

    @property
    def study_name(self) -> str:
        """The default HPO study name: the result file's stem."""
        return self.output.stem

    def _beside(self, suffix: str) -> Path:
        return self.output.with_name(self.output.name + suffix)


def _absolute(path: Path) -> Path:
    # not resolve(): a symlinked directory keeps the name the user gave it
    return path if path.is_absolute() else Path.cwd() / path
