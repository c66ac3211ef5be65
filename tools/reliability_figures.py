"""The memory figures of docs/reliability.md: peak resident memory of hostile and largest-accepted inputs.

    python tools/reliability_figures.py [--model BUNDLE] [--backend onnxruntime]

The files are written first, by one child process; then each case runs in a fresh child (so neither making the
input nor another case can hide its allocations): it builds an EyeState, records its peak RSS (ru_maxrss) before
and after the one call under test, and prints the difference and the outcome. Cases: the adversarial pass's
decompression bombs (issue 14 #2: a 7000 x 7000 PNG of zeros, a 16-bit one, a small JPEG whose frame header says
7000 x 7000), the largest files a crop may be (2048 x 2048 RGB / RGBA / 16-bit PNG), and 100,000 8 x 8 crops as a
list and as a stack (#9).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import io, json, resource, struct, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
import eyesdk

model, backend, case, folder = sys.argv[1] or None, sys.argv[2], sys.argv[3], Path(sys.argv[4])

def png(array, **options):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", **options)
    return buffer.getvalue()

def jpeg_claiming(width, height):
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)

def stripes(shape, dtype=np.uint8, value=255):
    a = np.zeros(shape, dtype)
    a[::7] = value
    return a

files = {
    "png-7000-zeros": lambda: png(np.zeros((7000, 7000), np.uint8), compress_level=9),
    "png16-7000-zeros": lambda: png(np.zeros((7000, 7000), np.uint16), compress_level=9),
    "jpeg-header-7000": lambda: jpeg_claiming(7000, 7000),
    "png-2048-rgb": lambda: png(stripes((2048, 2048, 3)), compress_level=1),
    "png-2048-rgba": lambda: png(stripes((2048, 2048, 4)), compress_level=1),
    "png16-2048": lambda: png(stripes((2048, 2048), np.uint16, 40000), compress_level=1),
}
if case == "write-files":
    for name, make in files.items():
        (folder / name).write_bytes(make())
    sys.exit(0)
es = eyesdk.EyeState(model=model, backend=backend, precision="fp32")
if case in files:
    size, call = (folder / case).stat().st_size, lambda: es.predict(folder / case)
else:
    many = [np.full((8, 8), i % 256, np.uint8) for i in range(100_000)]
    size = 100_000 * 64
    call = (lambda: es.predict_batch(many)) if case == "list-100k-8x8" else (lambda: es.predict_batch(np.stack(many)))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    call()
    outcome = "predicted"
except eyesdk.InvalidCropError as exc:
    outcome = "refused: " + str(exc).split(": ", 1)[-1][:90]
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"case": case, "input_bytes": size, "peak_rss_growth_mib": round((after - before) / 1024, 1),
                  "seconds": round(seconds, 3), "outcome": outcome}))
"""

CASES = ("png-7000-zeros", "png16-7000-zeros", "jpeg-header-7000", "png-2048-rgb", "png-2048-rgba", "png16-2048",
         "list-100k-8x8", "stack-100k-8x8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="")
    parser.add_argument("--backend", default="onnxruntime")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eyesdk-figures-") as folder:
        subprocess.run([sys.executable, "-c", CHILD, args.model, args.backend, "write-files", folder], check=True)
        print(f"{'case':<20} {'input':>12} {'peak RSS growth':>16} {'time':>8}  outcome")
        for case in CASES:
            out = subprocess.run([sys.executable, "-c", CHILD, args.model, args.backend, case, folder],
                                 capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{row['case']:<20} {row['input_bytes']:>10} B {row['peak_rss_growth_mib']:>12} MiB "
                  f"{row['seconds']:>7.3f}s  {row['outcome']}")


if __name__ == "__main__":
    main()
