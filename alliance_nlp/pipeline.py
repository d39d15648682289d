"""Named, swappable pipeline components over one Session (in the manner of spaCy's pipeline).

A component is any callable `Session -> Session`. Factories are registered by name and imported
lazily, so reading a transcript never pays for loading torch.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from .session import Session

Component = Callable[[Session], Session]
FACTORIES: dict[str, Callable[..., Component]] = {}


def register(name: str):
    """Decorator registering a component factory under `name`."""
    def deco(factory: Callable[..., Component]):
        FACTORIES[name] = factory
        return factory
    return deco


@register("diarize")
def _diarize(**cfg: Any) -> Component:
    from .diarize import Diarizer
    return Diarizer(**cfg)


@register("segment")
def _segment(**cfg: Any) -> Component:
    from .segment import Segmenter
    return Segmenter(**cfg)


@register("classify")
def _classify(**cfg: Any) -> Component:
    from .classify import MarkerClassifier
    return MarkerClassifier.load(**cfg)


@register("aggregate")
def _aggregate(**cfg: Any) -> Component:
    from .aggregate import AllianceAggregator
    return AllianceAggregator.load(**cfg)


DEFAULT_STEPS = ("diarize", "segment", "classify", "aggregate")


class Pipeline:
    """Runs named components in order; build once, apply to many sessions."""

    def __init__(self, steps: Iterable[tuple[str, Component]]):
        self.steps = list(steps)

    @classmethod
    def from_names(cls, names: Iterable[str] = DEFAULT_STEPS,
                   config: dict[str, dict[str, Any]] | None = None) -> "Pipeline":
        config = config or {}
        steps = []
        for name in names:
            if name not in FACTORIES:
                raise KeyError(f"unknown pipeline component {name!r}; known: {', '.join(FACTORIES)}")
            steps.append((name, FACTORIES[name](**config.get(name, {}))))
        return cls(steps)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.steps]

    def __call__(self, session: Session) -> Session:
        for _, component in self.steps:
            session = component(session)
        return session
