"""Named components over one Session, with declared contracts (in the manner of spaCy's pipeline).

A component is any callable `Session -> Session`; one that can do better on many sessions at once
(the classifier, which batches utterances across sessions) also has `pipe(sessions) -> sessions`.
Factories are registered by name with what the component REQUIRES of a session and what it ASSIGNS,
and are imported lazily, so reading a transcript never pays for loading torch. Building a pipeline
whose requirements no earlier component assigns fails at once (`PipelineError`).

    pipe = Pipeline.from_names()                        # diarize, segment, classify, aggregate
    session = pipe(read("session.txt"))
    for session in pipe.pipe(sessions, batch_size=8):   # shared classifier batches
        ...
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import PipelineError
from .labels import LABELS
from .session import Session

log = logging.getLogger("alliance_nlp.pipeline")
Component = Callable[[Session], Session]
ErrorHandler = Callable[[Session, Exception], None]

# What a session can have, and how to tell that it has it.
CAPABILITIES: dict[str, Callable[[Session], bool]] = {
    "turns": lambda s: bool(s.turns),
    "roles": lambda s: "diarize" in s.provenance,
    "units": lambda s: "segment" in s.provenance,
    "markers": lambda s: all(len(u.probabilities) == len(LABELS) for u in s.utterances),
    "estimates": lambda s: bool(s.results),
}
INGESTED = frozenset({"turns"})  # what a freshly read transcript provides


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    factory: Callable[..., Component]
    requires: tuple[str, ...]
    assigns: tuple[str, ...]
    description: str = ""


REGISTRY: dict[str, ComponentSpec] = {}


def register(
    name: str, *, requires: Sequence[str] = (), assigns: Sequence[str] = (), description: str = ""
) -> Callable[[Callable[..., Component]], Callable[..., Component]]:
    """Decorator registering a component factory under `name` with its contract."""
    unknown = (set(requires) | set(assigns)) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"component {name!r}: unknown capabilities {sorted(unknown)}")

    def deco(factory: Callable[..., Component]) -> Callable[..., Component]:
        REGISTRY[name] = ComponentSpec(name, factory, tuple(requires), tuple(assigns), description)
        return factory

    return deco


@register(
    "diarize",
    requires=("turns",),
    assigns=("roles",),
    description="speaker turns for unlabelled text, merged turns, therapist/client roles",
)
def _diarize(**cfg: Any) -> Component:
    from .diarize import Diarizer

    return Diarizer(**cfg)


@register(
    "segment",
    requires=("turns",),
    assigns=("units",),
    description="the classifier's units: records, long ones cut at sentence boundaries",
)
def _segment(**cfg: Any) -> Component:
    from .segment import Segmenter

    return Segmenter(**cfg)


@register(
    "classify",
    requires=("roles", "units"),
    assigns=("markers",),
    description="marker probabilities and markers for every utterance",
)
def _classify(**cfg: Any) -> Component:
    from .classify import MarkerClassifier

    return MarkerClassifier.load(**cfg)


@register(
    "aggregate",
    requires=("markers",),
    assigns=("estimates",),
    description="Goal/Task/Bond/Total with intervals, rupture-repair episodes, trajectory",
)
def _aggregate(**cfg: Any) -> Component:
    from .aggregate import Aggregator

    return Aggregator.load(**cfg)


@register(
    "redact",
    requires=("turns",),
    description="identifiers (names, places, dates, contacts, ids, organisations, URLs) replaced by typed "
    "placeholders, consistently within the session; last (--redact) or first (--redact-input)",
)
def _redact(**cfg: Any) -> Component:
    from .redact import RedactStage

    return RedactStage(**cfg)


DEFAULT_STEPS = ("diarize", "segment", "classify", "aggregate")


def check_contracts(names: Sequence[str], provided: Iterable[str] = INGESTED) -> None:
    """Raise PipelineError naming the first component whose requirements no earlier one assigns."""
    have = set(provided)
    for name in names:
        if name not in REGISTRY:
            raise PipelineError(f"unknown pipeline component {name!r}; known: {', '.join(REGISTRY)}")
        spec = REGISTRY[name]
        missing = [r for r in spec.requires if r not in have]
        if missing:
            givers = sorted({s.name for s in REGISTRY.values() if set(missing) & set(s.assigns)})
            raise PipelineError(
                f"component {name!r} requires {', '.join(missing)}, which no earlier component "
                f"assigns" + (f" (add {' or '.join(map(repr, givers))} before it)" if givers else "")
            )
        have |= set(spec.assigns)


def capabilities(session: Session) -> set[str]:
    """What a session already has (for a pipeline that continues from a saved session)."""
    return {name for name, test in CAPABILITIES.items() if test(session)}


class Pipeline:
    """Runs named components in order; build once, apply to one session or stream many."""

    def __init__(self, steps: Iterable[tuple[str, Component]], provided: Iterable[str] = INGESTED):
        self.steps = list(steps)
        check_contracts([n for n, _ in self.steps], provided)

    @classmethod
    def from_names(
        cls,
        names: Iterable[str] = DEFAULT_STEPS,
        config: dict[str, dict[str, Any]] | None = None,
        provided: Iterable[str] = INGESTED,
    ) -> Pipeline:
        """Build from registered names; `config[name]` holds keyword options of that component.
        Contracts are checked before any component (and so any model) is loaded."""
        names, config, provided = list(names), config or {}, set(provided)
        check_contracts(names, provided)
        unused = set(config) - set(names)
        if unused:
            raise PipelineError(f"options given for components not in the pipeline: {', '.join(sorted(unused))}")
        steps = []
        for n in names:
            t = time.perf_counter()
            steps.append((n, REGISTRY[n].factory(**config.get(n, {}))))
            log.info("loaded %s in %.2fs", n, time.perf_counter() - t)
        return cls(steps, provided)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.steps]

    def __call__(self, session: Session) -> Session:
        for name, component in self.steps:
            t = time.perf_counter()
            session = component(session)
            log.info("%s: %s in %.2fs", session.id, name, time.perf_counter() - t)
        return session

    def pipe(
        self, sessions: Iterable[Session], batch_size: int = 8, on_error: ErrorHandler | None = None
    ) -> Iterator[Session]:
        """Process a stream in batches of `batch_size` sessions, each component over the whole batch
        (components with a `pipe` method, such as the classifier, share work across the batch).

        on_error(session, exc): called for a session whose component raised; that session is dropped
        and the rest of the batch goes on. Without it, the first error propagates."""
        if batch_size < 1:
            raise PipelineError(f"batch_size must be at least 1, not {batch_size}")
        it = iter(sessions)
        while batch := list(itertools.islice(it, batch_size)):
            for name, component in self.steps:
                t = time.perf_counter()
                batch = _run_component(component, batch, on_error)
                log.info("%d session(s): %s in %.2fs", len(batch), name, time.perf_counter() - t)
            yield from batch


def _run_component(component: Component, batch: list[Session], on_error: ErrorHandler | None) -> list[Session]:
    many = getattr(component, "pipe", None)
    if many is not None:
        try:
            return list(many(batch))
        except Exception:
            if on_error is None:
                raise
            # find the session that failed; the others go on one by one
    out = []
    for s in batch:
        try:
            out.append(component(s))
        except Exception as exc:
            if on_error is None:
                raise
            on_error(s, exc)
    return out
