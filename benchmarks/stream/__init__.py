"""Stream benchmarks: event accuracy on real crops, noise, gate, crop scale, locators, speed (eyesdk-bench stream)."""
