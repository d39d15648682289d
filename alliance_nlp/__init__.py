"""alliance-nlp: measure the therapeutic alliance in psychotherapy session transcripts."""

__version__ = "0.7.0"

from .batch import analyze  # noqa: E402
from .pipeline import Pipeline  # noqa: E402
from .session import Episode, Estimate, Results, Session, Speaker, Turn, Utterance, Word  # noqa: E402

__all__ = [
    "Estimate",
    "Episode",
    "Pipeline",
    "Results",
    "Session",
    "Speaker",
    "Turn",
    "Utterance",
    "Word",
    "__version__",
    "analyze",
]
