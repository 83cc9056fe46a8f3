"""`hpcopt demo`: the README's main job, a real XPCS fit on bundled data."""

from __future__ import annotations

from pathlib import Path

from ..bundled import data_dir

DEMO_CONFIG = "demo.toml"


def demo_config() -> Path:
    return data_dir() / DEMO_CONFIG


def truth_lines(summary: dict) -> list[str]:
    """The demo's summary ends with the true values of the simulated dataset."""
    from ..models.xpcs import DEMO_SETTINGS
    lines = ["true values of the simulated dataset:"]
    lines += [f"  {k} = {v:.10g}" for k, v in DEMO_SETTINGS["params"].items()]
    lines.append(f"inspect it with: hpcopt report {summary['path']} --plots plots/")
    return lines


def run_demo(output: str, *, quiet: bool = False) -> int:
    from ..campaign.contract import CampaignRequest
    from ..campaign.lifecycle import run_campaign
    return run_campaign(CampaignRequest("sweep", demo_config(), str(Path(output).resolve()),
                                        force=True, quiet=quiet, label="demo sweep",
                                        epilogue=truth_lines))
