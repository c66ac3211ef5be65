"""Out-of-fold label audit: list the crops that a model which never saw their subject contradicts confidently.

Reads out-of-fold logits (``cv`` output ``oof.npz``, or ``tools/screen.py`` runs as RUN:FOLD pairs), takes the crops
whose calibrated P(open) disagrees with the label beyond ``--confidence`` (default 0.98: P(open) >= 0.98 on a
"closed" label, or <= 0.02 on an "open" one), and writes a CSV and a contact sheet (label, P(open), file) for a person
to judge. Nothing is relabelled: the findings are written into docs/model-card.md by hand.

    .venv/bin/python tools/label_audit.py --oof runs/cv/oof.npz --out runs/audit
    .venv/bin/python tools/label_audit.py --screen runs/screen/base15:0 --out runs/audit
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = [str(ROOT.parent / "shared" / "data" / "mrlEyes_2018_01"), str(ROOT.parent / "shared" / "data" / "cew")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oof", default=None, help="oof.npz written by eyesdk-convert cv")
    parser.add_argument("--screen", action="append", default=[], help="RUN_DIR:TEST_FOLD of tools/screen.py")
    parser.add_argument("--confidence", type=float, default=0.98)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sheet", type=int, default=120, help="crops on the contact sheet (most confident first)")
    args = parser.parse_args(argv)

    from PIL import Image, ImageDraw

    from eyesdk.converters.pipeline import prepare_data
    from eyesdk.metrics import sigmoid

    data = prepare_data(DATA, ROOT / "folds" / "shared-data-5fold.json", progress=False)
    paths = np.array([str(s.path) for s in data.subset(np.ones(len(data.y), bool))])
    rows = []
    if args.oof:
        oof = np.load(args.oof)
        t = float(oof["temperature"])
        for path, z, y in zip(oof["paths"], oof["logits"], oof["y"], strict=True):
            rows.append((str(path), float(sigmoid(z / t)), int(y)))
    for item in args.screen:
        run, _, fold = item.rpartition(":")
        arrays = np.load(Path(run) / "logits.npz")
        import json

        t = json.loads((Path(run) / "report.json").read_text())["summary"]["temperature"]
        fold_paths = paths[data.folds == int(fold)]
        for path, z, y in zip(fold_paths, arrays["test_logits"], arrays["test_y"], strict=True):
            rows.append((str(path), float(sigmoid(z / t)), int(y)))
    c = args.confidence
    flagged = sorted((r for r in rows if (r[2] == 0 and r[1] >= c) or (r[2] == 1 and r[1] <= 1 - c)),
                     key=lambda r: -abs(r[1] - r[2]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "flagged.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "p_open"])
        writer.writerows([(p, "open" if y else "closed", f"{q:.4f}") for p, q, y in flagged])
    cell = 72
    cols = 10
    shown = flagged[: args.sheet]
    sheet = Image.new("L", (cols * cell, max(1, -(-len(shown) // cols)) * (cell + 12)), 255)
    draw = ImageDraw.Draw(sheet)
    for i, (path, q, y) in enumerate(shown):
        with Image.open(path) as im:
            tile = im.convert("L").resize((cell, cell))
        x0, y0 = (i % cols) * cell, (i // cols) * (cell + 12)
        sheet.paste(tile, (x0, y0))
        draw.text((x0 + 2, y0 + cell), f"{'O' if y else 'C'} {q:.2f} {i}", fill=0)
    sheet.save(out / "flagged.png")
    by_subject: dict[str, int] = {}
    for path, _, _ in flagged:
        key = Path(path).parent.name if "mrlEyes" in path else "cew"
        by_subject[key] = by_subject.get(key, 0) + 1
    print(f"{len(flagged)} of {len(rows)} out-of-fold crops contradict their label with confidence >= {c}")
    print("by subject:", ", ".join(f"{k} {v}" for k, v in sorted(by_subject.items(), key=lambda kv: -kv[1])))
    print(f"wrote {out / 'flagged.csv'} and {out / 'flagged.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
