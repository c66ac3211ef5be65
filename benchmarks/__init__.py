"""Measurement on a device (``eyesdk-bench``): latency, parity, accuracy drift and calibration per artifact, and peers.

Needs only the runtime extras; heavy libraries are imported where they are used. See docs/benchmarks.md.
"""
