"""`hpcopt demo`: the README's main job, a real XPCS fit on bundled data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEMO_CONFIG = "demo.toml"


def demo_config() -> Path:
    return Path(str(resources.files("hpcopt") / "data" / DEMO_CONFIG))


def run_demo(output: str, *, quiet: bool = False) -> int:
    from ..campaign import run_campaign
    from ..models.xpcs import DEMO_SETTINGS
    from ..sweep import engine

    req = engine.SweepRequest(demo_config(), output=str(Path(output).resolve()), force=True)

    def summary_with_truth(summary: dict) -> str:
        text = engine.format_summary(summary)
        truth = DEMO_SETTINGS["params"]
        lines = [text, "true values of the simulated dataset:"]
        lines += [f"  {k} = {v:.10g}" for k, v in truth.items()]
        lines.append(f"inspect it with: hpcopt report {summary['path']} --plots plots/")
        return "\n".join(lines)

    return run_campaign("demo sweep", prepare=lambda: engine.prepare(req),
                        run=lambda world, cfg: engine.run(world, cfg, resume=False, quiet=quiet),
                        format_summary=summary_with_truth, quiet=quiet)
