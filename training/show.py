"""Print one corpus session with utterance ids, for a coder reading it whole.

python -m training.show annomi 12
python -m training.show esconv train:17
"""

from __future__ import annotations

import sys
import textwrap

from training.corpora import read_corpus


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__)
        return 2
    corpus, *sids = argv
    sessions = read_corpus(corpus)
    for sid in sids:
        s = sessions.get(sid)
        if s is None:
            print(f"error: no session {sid!r} in {corpus}", file=sys.stderr)
            return 1
        print(f"=== {corpus} session {sid}  ({len(s.utterances)} utterances)")
        for u in s.utterances:
            tag = "T" if u.speaker == "therapist" else "C"
            body = textwrap.fill(u.text, 110, subsequent_indent=" " * 9)
            print(f"[{u.utterance:>3}] {tag}: {body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
