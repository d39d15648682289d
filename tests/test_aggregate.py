"""Session estimates, rupture-repair episodes, trajectories and course shapes on invented sessions."""
import numpy as np
import pytest

from alliance_nlp.aggregate import FEATURES, SUBSCALES, AllianceAggregator, course_shape, rupture_episodes
from alliance_nlp.labels import LABELS
from alliance_nlp.session import Session, Speaker, Turn, Utterance


def make_session(codes, times=True):
    """codes: list of (role, markers); probabilities 0.9 for markers, 0.05 otherwise."""
    s = Session("t", speakers={"T": Speaker("T", role="therapist"), "C": Speaker("C", role="client")})
    for i, (role, markers) in enumerate(codes):
        spk = "T" if role == "therapist" else "C"
        u = Utterance(f"utterance {i}", spk, start=i * 30.0 if times else None,
                      end=i * 30.0 + 20 if times else None, source=i + 1,
                      probabilities={l: (0.9 if l in markers else 0.05) for l in LABELS}, markers=list(markers))
        s.turns.append(Turn(spk, [u]))
    return s


def fitted(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.5, size=(60, len(FEATURES)))
    bond_col = FEATURES.index("therapist_bond")
    rupt_col = FEATURES.index("client_rupture_withdrawal")
    y = 3 + 3 * X[:, bond_col] - 3 * X[:, rupt_col] + rng.normal(0, 0.1, 60)
    return AllianceAggregator.fit(X, {k: y for k in SUBSCALES}, alpha=1.0)


def test_episode_repaired_and_resolved():
    s = make_session([("therapist", ["task"]), ("client", ["rupture_confrontation"]),
                      ("therapist", ["repair", "bond"]), ("client", ["task"]), ("therapist", []),
                      ("client", ["goal"]), ("therapist", []), ("client", [])])
    (ep,) = rupture_episodes(s)
    assert ep["type"] == "confrontation" and ep["start_utterance"] == 1 and ep["repaired"]
    assert ep["repair_utterance"] == 2 and ep["resolved"] is True and ep["sources"] == [2]


def test_unrepaired_withdrawal_and_merging():
    s = make_session([("therapist", ["task"]), ("client", ["rupture_withdrawal"]), ("therapist", []),
                      ("client", ["rupture_withdrawal"]), ("therapist", []), ("client", ["rupture_withdrawal"]),
                      ("therapist", []), ("client", []), ("therapist", []), ("client", []),
                      ("therapist", []), ("client", [])])
    eps = rupture_episodes(s)
    assert len(eps) == 1 and eps[0]["end_utterance"] == 5 and not eps[0]["repaired"]
    assert eps[0]["resolved"] is False  # the client did not return to collaboration


def test_fit_predicts_direction_and_roundtrips(tmp_path):
    agg = fitted()
    good = make_session([("therapist", ["bond"]), ("client", ["task"])] * 10)
    bad = make_session([("therapist", []), ("client", ["rupture_withdrawal"])] * 10)
    g, b = agg(good).results, agg(bad).results
    assert g["total"]["estimate"] > b["total"]["estimate"]
    for k in (*SUBSCALES, "total"):
        assert 1 <= g[k]["low"] <= g[k]["estimate"] <= g[k]["high"] <= 5
    path = tmp_path / "cal.json"
    agg.save(path)
    again = AllianceAggregator.load(path)
    assert again(make_session([("therapist", ["bond"]), ("client", ["task"])] * 10)).results["total"] == g["total"]


def test_trajectory_windows_by_time_and_turns():
    agg = fitted()
    s = agg(make_session([("therapist", ["bond"]), ("client", [])] * 20))  # 40 utts x 30 s = 20 min
    tr = s.results["trajectory"]
    assert tr["by"] == "time" and len(tr["windows"]) == 4
    assert all(w["total"]["low"] <= w["total"]["estimate"] <= w["total"]["high"] for w in tr["windows"])
    s2 = agg(make_session([("therapist", ["bond"]), ("client", [])] * 20, times=False))
    assert s2.results["trajectory"]["by"] == "turns" and len(s2.results["trajectory"]["windows"]) == 2


@pytest.mark.parametrize("totals,shape", [
    ([4.0, 3.2, 4.1], "high-low-high"), ([3.0, 3.4, 3.9, 4.2], "rising"), ([4.2, 3.9, 3.5, 3.1], "falling"),
    ([3.5, 3.55, 3.5, 3.6], "stable"), ([3.0, 3.9, 3.1], "low-high-low"), ([3.5], "insufficient"),
])
def test_course_shape(totals, shape):
    assert course_shape(totals) == shape
