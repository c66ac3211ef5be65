"""All of a stream's settings in one value: one config per stage, each validated where it is defined."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..locators.crop import CropRecipe
from .adaptation import AdaptationConfig
from .events import EventConfig
from .filters import FilterConfig
from .quality import QualityConfig
from .window import WindowConfig
from .winks import WinkConfig


@dataclass(frozen=True)
class StreamConfig:
    events: EventConfig = field(default_factory=EventConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    winks: WinkConfig = field(default_factory=WinkConfig)
    crop: CropRecipe = field(default_factory=CropRecipe)
