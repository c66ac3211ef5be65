"""Tests of eyesdk/backends (a package, so its test_base.py and tests/locators/test_base.py can share a name)."""
