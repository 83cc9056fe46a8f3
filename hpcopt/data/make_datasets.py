"""Regenerate the bundled datasets (hpcopt/data/README.md): ``python -m hpcopt.data.make_datasets``."""

from __future__ import annotations

from hpcopt.models.xpcs import (BEAMLINE_FILE, DEMO_FILE, make_beamline_example,
                                make_demo_dataset)


def main() -> None:
    make_demo_dataset(DEMO_FILE)
    make_beamline_example(BEAMLINE_FILE)
    print(f"wrote {DEMO_FILE} and {BEAMLINE_FILE}")


if __name__ == "__main__":
    main()
