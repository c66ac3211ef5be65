"""Re-measure docs/performance.md on this project's machines: a repository tool, not part of the wheel.

What only we have - Open Model Zoo's ``open-closed-eye-0001`` under ``../shared/peers`` and the MRL crops under
``../shared/data`` - is found here, then the user-facing commands run with those paths spelled out, each printed
first so the docs can cite it exactly:

    python tools/perf_docs.py [--shared ../shared] [--side 90] [--dry-run]

runs ``eyesdk-bench peer-latency --all`` on a decoded MRL crop near ``--side`` px and ``eyesdk-bench throughput``
(the two figures issue 11 targets: the ratio to the peer's bare ``session.run`` and the rate at batch 256).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = Path("peers/open-closed-eye-0001/open-closed-eye.onnx")
MRL = Path("data/mrlEyes_2018_01")


def find_crop(mrl: Path, side: int = 90, scan: int = 4000, slack: int = 4) -> Path:
    """The first MRL image (in sorted order) whose sides are both within ``slack`` px of ``side``."""
    from PIL import Image

    if not mrl.is_dir():
        raise FileNotFoundError(f"no MRL folder at {mrl}")
    for path in sorted(mrl.glob("s*/*.png"))[:scan]:
        with Image.open(path) as image:
            if abs(image.width - side) <= slack and abs(image.height - side) <= slack:
                return path
    raise FileNotFoundError(f"no image of {side}±{slack} px among the first {scan} of {mrl}")


def commands(shared: Path, crop: Path) -> list[list[str]]:
    """The eyesdk-bench command lines (without the program name) that reproduce docs/performance.md."""
    peer = shared / PEER
    if not peer.is_file():
        raise FileNotFoundError(f"the peer model is not at {peer}")
    return [
        ["peer-latency", "--all", "--peer", f"omz-open-closed-eye:{peer}", "--crop", str(crop)],
        ["throughput", "--threads", "1,2"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(os.path.relpath(ROOT.parent / "shared")),
                        help="the shared folder (default: ../shared beside the repository)")
    parser.add_argument("--side", type=int, default=90, help="crop size to look for (px)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    try:
        crop = find_crop(args.shared / MRL, args.side)
        lines = commands(args.shared, crop)
    except FileNotFoundError as exc:
        print(f"perf_docs: {exc}", file=sys.stderr)
        return 2
    from eyesdk.benchmarks.cli import main as bench

    worst = 0
    for line in lines:
        print(f"$ {shlex.join(['eyesdk-bench', *line])}", flush=True)
        if not args.dry_run:
            worst = max(worst, bench(line, prog_name="eyesdk-bench", standalone_mode=False) or 0)
    return worst


if __name__ == "__main__":
    sys.exit(main())
