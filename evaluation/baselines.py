"""Two baselines for the alliance-marker classifier, tuned exactly like it (on validation only).

1. TF-IDF + logistic regression: word 1-2-gram TF-IDF of the utterance, a role-specific copy of it
   (labels are defined per speaker), TF-IDF of the previous utterance and of the three before it, and
   role indicators of the utterance and the previous one; one-vs-rest, class_weight="balanced", C
   chosen per label on validation AUPRC; then the same calibration as the classifier (undo the
   class-weight prior shift, temperature on validation) and max-F1 thresholds on validation.
2. Zero-shot similarity (inventory projection in the manner of Lin et al.): cosine similarity between
   the base MiniLM embedding of the utterance and embeddings of construct statements we wrote for each
   label (below: our own wording, never WAI item text); score = the best-matching statement; Platt
   scaling and a max-F1 threshold fitted on validation (no training on labels otherwise).

Each baseline exposes fit(train_rows, validation_rows) and predict_proba(rows) -> (n, 6), and
`thresholds` (per label, LABELS order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit as sigmoid

from alliance_nlp.labels import LABELS
from training.thresholds import fit_temperature, tune_thresholds

# Our own construct statements (invented; none is WAI item text). Several per label: an observer's
# description of the construct and first-person lines a speaker showing it might say.
CONSTRUCT_STATEMENTS: dict[str, list[str]] = {
    "goal": [
        "The counsellor and the client talk about what the client wants to achieve and agree on the aim.",
        "What would you like to be different in your life when we are done working together?",
        "So the main thing you want is to feel calmer at home, is that right?",
        "Yes, that is what I want, that is the change I am hoping for.",
        "My aim is to get back to feeling like myself and to cope better.",
    ],
    "task": [
        "The counsellor and the client plan together how to work on the problem and agree on next steps.",
        "Would it be okay if I shared a few ideas that have helped other people?",
        "What should we focus on first today?",
        "Between now and next time, you will try this exercise and we will see how it goes.",
        "Okay, I could try writing it down each evening and bring it next week.",
    ],
    "bond": [
        "The counsellor shows warmth, understanding and care for the client's feelings.",
        "That sounds really painful, and it makes sense that you feel so tired.",
        "I'm so sorry you are going through this, you have shown a lot of strength.",
        "Thank you, you really understand me, this conversation has helped.",
        "I've never told anyone this before, but I feel I can say it here.",
    ],
    "rupture_withdrawal": [
        "The client pulls away from the conversation, gives evasive or minimal answers and avoids feelings.",
        "I don't know.",
        "Fine, whatever, it doesn't matter.",
        "I'd rather not talk about that, can we change the subject?",
        "Nothing will help anyway, there is no point.",
    ],
    "rupture_confrontation": [
        "The speaker argues against the other person, complains about the sessions or rejects the suggestion.",
        "That won't work for me, you are not listening to what I said.",
        "This is a waste of time, talking about it has not helped at all.",
        "You really need to stop, it is dangerous and you have to listen to me.",
        "Why do you keep pushing me on this? I already told you no.",
    ],
    "repair": [
        "The counsellor responds to a strain in the conversation by checking in, apologising or changing approach.",
        "I may have pushed too hard just now, I'm sorry about that.",
        "It sounds like what I suggested doesn't fit for you, tell me what isn't working.",
        "You're right to question that, let me explain why I asked.",
        "Let's step back and focus on what matters most to you instead.",
    ],
}


def _calibrate(Zv: np.ndarray, Yv: np.ndarray, offset: np.ndarray):
    temps = np.array([fit_temperature(Yv[:, j], Zv[:, j] - offset[j]) for j in range(Yv.shape[1])])
    return temps


def _labels(rows: Sequence[dict]) -> np.ndarray:
    return np.array([r["labels"] for r in rows], dtype=int).reshape(-1, len(LABELS))


class TfidfLogReg:
    name = "tfidf_logreg"

    def __init__(self, Cs: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0), seed: int = 13):
        self.Cs, self.seed = tuple(Cs), seed

    def _features(self, rows: Sequence[dict]):
        from scipy import sparse

        utt = self.vec_u.transform([r["text"] for r in rows])
        th = np.array([r["role"] == "therapist" for r in rows], dtype=float)
        prev = self.vec_c.transform([r["context_texts"][-1] if r["context_texts"] else "" for r in rows])
        earlier = self.vec_c.transform([" ".join(r["context_texts"][:-1]) for r in rows])
        prev_th = np.array(
            [bool(r["context_roles"]) and r["context_roles"][-1] == "therapist" for r in rows], dtype=float
        )
        first = np.array([not r["context_texts"] for r in rows], dtype=float)
        dense = sparse.csr_matrix(np.c_[th, 1 - th, prev_th, first])
        return sparse.hstack([utt, sparse.diags(th) @ utt, sparse.diags(1 - th) @ utt, prev, earlier, dense]).tocsr()

    def fit(self, train: Sequence[dict], val: Sequence[dict]) -> TfidfLogReg:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import average_precision_score

        kw = dict(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True)
        self.vec_u = TfidfVectorizer(**kw).fit([r["text"] for r in train])
        self.vec_c = TfidfVectorizer(max_features=5000, **kw).fit([r["text"] for r in train])
        Xt, Xv = self._features(train), self._features(val)
        Yt, Yv = _labels(train), _labels(val)
        self.models, self.C = [], []
        for j in range(len(LABELS)):
            best = None
            for C in self.Cs:
                m = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=self.seed)
                m.fit(Xt, Yt[:, j])
                ap = average_precision_score(Yv[:, j], m.decision_function(Xv)) if Yv[:, j].any() else 0.0
                if best is None or ap > best[0]:
                    best = (ap, C, m)
            self.models.append(best[2])
            self.C.append(best[1])
        # class_weight="balanced" weighs positives by neg/pos relative to negatives: undo that shift
        pos = Yt.sum(0)
        self.offset = np.log(np.maximum(len(Yt) - pos, 1) / np.maximum(pos, 1))
        Zv = self.logits(val, Xv)
        self.temperature = _calibrate(Zv, Yv, self.offset)
        self.thresholds = tune_thresholds(Yv, self.calibrated(Zv))
        return self

    def logits(self, rows, X=None) -> np.ndarray:
        X = self._features(rows) if X is None else X
        return np.column_stack([m.decision_function(X) for m in self.models])

    def calibrated(self, Z: np.ndarray) -> np.ndarray:
        return sigmoid((Z - self.offset) / self.temperature)

    def predict_proba(self, rows: Sequence[dict]) -> np.ndarray:
        return self.calibrated(self.logits(rows))


class ZeroShotSimilarity:
    name = "zero_shot_similarity"

    def __init__(self, encoder=None, statements: dict[str, list[str]] | None = None):
        from alliance_nlp.encoder import SentenceEncoder

        self.encoder = encoder or SentenceEncoder()
        self.statements = statements or CONSTRUCT_STATEMENTS
        self.anchors = [self.encoder.encode(self.statements[l]) for l in LABELS]
        self._cache: dict[str, np.ndarray] = {}

    def scores(self, rows: Sequence[dict]) -> np.ndarray:
        todo = sorted({r["text"] for r in rows} - set(self._cache))
        if todo:
            for t, v in zip(todo, self.encoder.encode(todo)):
                self._cache[t] = v
        E = np.stack([self._cache[r["text"]] for r in rows]) if rows else np.zeros((0, 1))
        return np.column_stack([(E @ A.T).max(1) for A in self.anchors])

    def fit(self, train: Sequence[dict], val: Sequence[dict]) -> ZeroShotSimilarity:
        from sklearn.linear_model import LogisticRegression

        S, Y = self.scores(val), _labels(val)
        self.platt = []
        for j in range(len(LABELS)):
            if 0 < Y[:, j].sum() < len(Y):
                m = LogisticRegression(C=1e4, max_iter=1000).fit(S[:, [j]], Y[:, j])
                self.platt.append((float(m.coef_[0, 0]), float(m.intercept_[0])))
            else:
                self.platt.append((1.0, 0.0))
        self.thresholds = tune_thresholds(Y, self._prob(S))
        return self

    def _prob(self, S: np.ndarray) -> np.ndarray:
        a = np.array([p[0] for p in self.platt])
        b = np.array([p[1] for p in self.platt])
        return sigmoid(S * a + b)

    def predict_proba(self, rows: Sequence[dict]) -> np.ndarray:
        return self._prob(self.scores(rows))
