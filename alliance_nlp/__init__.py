"""alliance-nlp: measure the therapeutic alliance in psychotherapy session transcripts."""
__version__ = "0.1.0"

from .session import Session, Speaker, Turn, Utterance, Word  # noqa: E402

__all__ = ["Session", "Speaker", "Turn", "Utterance", "Word", "__version__"]
