"""eyesdk.lazy: the one PEP 562 mechanism behind ``eyesdk``, ``eyesdk.stream`` and ``eyesdk.locators``."""

from __future__ import annotations

import sys

import pytest

from eyesdk.lazy import lazy_attributes


def test_a_name_loads_its_module_once_and_is_kept() -> None:
    namespace: dict = {}
    getattr_, dir_ = lazy_attributes("pkg", {"JSONDecoder": "json.decoder"}, namespace)
    value = getattr_("JSONDecoder")
    assert value is sys.modules["json.decoder"].JSONDecoder and namespace["JSONDecoder"] is value
    assert dir_() == ["JSONDecoder"]


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_, _ = lazy_attributes("pkg", {}, {})
    with pytest.raises(AttributeError, match=r"module 'pkg' has no attribute 'nope'"):
        getattr_("nope")


@pytest.mark.parametrize("package", ["eyesdk", "eyesdk.stream", "eyesdk.locators"])
def test_the_packages_list_their_lazy_names(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    assert set(module._LAZY) <= set(dir(module))
    with pytest.raises(AttributeError, match=rf"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018
