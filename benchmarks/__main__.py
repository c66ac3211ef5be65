"""``python -m eyesdk.benchmarks`` = ``eyesdk-bench``."""

from .cli import main

main(prog_name="eyesdk-bench")
