"""Session estimates, rupture-repair episodes, trajectories and course shapes on invented sessions."""

from pathlib import Path

import numpy as np
import pytest

from alliance_nlp.aggregate import Aggregator
from alliance_nlp.course import course_shape
from alliance_nlp.episodes import rupture_episodes
from alliance_nlp.errors import ModelError, PipelineError
from alliance_nlp.labels import LABELS
from alliance_nlp.mapping import FEATURES, WaiMapping
from alliance_nlp.session import ESTIMATES, SUBSCALES, Session, Speaker, Turn, Utterance


def make_session(codes, times=True):
    """codes: list of (role, markers); probabilities 0.9 for markers, 0.05 otherwise."""
    s = Session("t", speakers={"T": Speaker("T", role="therapist"), "C": Speaker("C", role="client")})
    for i, (role, markers) in enumerate(codes):
        spk = "T" if role == "therapist" else "C"
        u = Utterance(
            f"utterance {i}",
            spk,
            start=i * 30.0 if times else None,
            end=i * 30.0 + 20 if times else None,
            source=i + 1,
            probabilities={l: (0.9 if l in markers else 0.05) for l in LABELS},
            markers=list(markers),
        )
        s.turns.append(Turn(spk, [u]))
    return s


def fitted(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 0.5, size=(60, len(FEATURES)))
    bond_col = FEATURES.index("therapist_bond")
    rupt_col = FEATURES.index("client_rupture_withdrawal")
    y = 3 + 3 * X[:, bond_col] - 3 * X[:, rupt_col] + rng.normal(0, 0.1, 60)
    return Aggregator(WaiMapping.fit(X, {k: y for k in SUBSCALES}, alpha=1.0))


def test_episode_repaired_and_resolved():
    s = make_session(
        [
            ("therapist", ["task"]),
            ("client", ["rupture_confrontation"]),
            ("therapist", ["repair", "bond"]),
            ("client", ["task"]),
            ("therapist", []),
            ("client", ["goal"]),
            ("therapist", []),
            ("client", []),
        ]
    )
    (ep,) = rupture_episodes(s)
    assert ep.type == "confrontation" and ep.start_utterance == 1 and ep.repaired
    assert ep.repair_utterance == 2 and ep.resolved is True and ep.sources == (2,)


def test_unrepaired_withdrawal_and_merging():
    s = make_session(
        [
            ("therapist", ["task"]),
            ("client", ["rupture_withdrawal"]),
            ("therapist", []),
            ("client", ["rupture_withdrawal"]),
            ("therapist", []),
            ("client", ["rupture_withdrawal"]),
            ("therapist", []),
            ("client", []),
            ("therapist", []),
            ("client", []),
            ("therapist", []),
            ("client", []),
        ]
    )
    eps = rupture_episodes(s)
    assert len(eps) == 1 and eps[0].end_utterance == 5 and not eps[0].repaired
    assert eps[0].resolved is False  # the client did not return to collaboration


def test_fit_predicts_direction_and_roundtrips(tmp_path):
    agg = fitted()
    good = make_session([("therapist", ["bond"]), ("client", ["task"])] * 10)
    bad = make_session([("therapist", []), ("client", ["rupture_withdrawal"])] * 10)
    g, b = agg(good).results.estimates, agg(bad).results.estimates
    assert g["total"].estimate > b["total"].estimate
    for k in ESTIMATES:
        assert 1 <= g[k].low <= g[k].estimate <= g[k].high <= 5
    path = tmp_path / "mapping.json"
    agg.mapping.save(path)
    again = Aggregator.load(path)
    assert again(make_session([("therapist", ["bond"]), ("client", ["task"])] * 10)).results.estimates == g


def test_trajectory_windows_by_time_and_turns():
    agg = fitted()
    s = agg(make_session([("therapist", ["bond"]), ("client", [])] * 20))  # 40 utts x 30 s = 20 min
    assert s.results.trajectory_by == "time" and len(s.results.trajectory) == 4
    assert all(
        w.estimates["total"].low <= w.estimates["total"].estimate <= w.estimates["total"].high
        for w in s.results.trajectory
    )
    s2 = agg(make_session([("therapist", ["bond"]), ("client", [])] * 20, times=False))
    assert s2.results.trajectory_by == "turns" and len(s2.results.trajectory) == 2


def test_results_roundtrip_through_session_json(tmp_path):
    s = fitted()(
        make_session(
            [
                ("therapist", ["bond"]),
                ("client", ["rupture_withdrawal"]),
                ("therapist", ["repair"]),
                ("client", ["task"]),
            ]
            * 5
        )
    )
    s.save(tmp_path / "s.json")
    again = Session.load(tmp_path / "s.json")
    assert again.results == s.results and again.results.ruptures == s.results.ruptures


def test_missing_probabilities_are_an_error_not_zero():
    s = make_session([("therapist", ["bond"]), ("client", [])])
    s.utterances[1].probabilities = {}
    with pytest.raises(PipelineError, match="no marker probabilities"):
        fitted()(s)


def test_bootstrap_interval_matches_resampling_rows():
    """The count-based cluster bootstrap equals resampling blocks of rows and recomputing features."""
    agg = fitted()
    s = make_session([("therapist", ["bond"]), ("client", ["task"]), ("therapist", []), ("client", ["goal"])] * 6)
    est = agg(s).results.estimates["total"]
    assert est.low < est.estimate < est.high
    wider = Aggregator(agg.mapping, n_boot=200, block=1)(s).results.estimates["total"]
    assert wider.estimate == est.estimate


def test_mapping_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="m.json: not a valid WAI mapping"):
        WaiMapping.load(bad)
    with pytest.raises(ModelError, match="mapping file not found"):
        WaiMapping.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "totals,shape",
    [
        ([4.0, 3.2, 4.1], "high-low-high"),
        ([3.0, 3.4, 3.9, 4.2], "rising"),
        ([4.2, 3.9, 3.5, 3.1], "falling"),
        ([3.5, 3.55, 3.5, 3.6], "stable"),
        ([3.0, 3.9, 3.1], "low-high-low"),
        ([3.5], "insufficient"),
    ],
)
def test_course_shape(totals, shape):
    assert course_shape(totals) == shape


def test_goal_and_task_move_apart_on_our_invented_pair():
    """Goal and Task come from their own markers: aims talk raises Goal over Task, planning the reverse."""
    from alliance_nlp import Pipeline
    from alliance_nlp.ingest import read

    root = Path(__file__).resolve().parents[1] / "data" / "examples"
    pipe = Pipeline.from_names()
    goals = pipe(read(root / "session_goals.txt")).results
    tasks = pipe(read(root / "session_tasks.txt")).results
    assert goals.indices["goal"].value > tasks.indices["goal"].value
    assert tasks.indices["task"].value > goals.indices["task"].value
    g, t = goals.estimates, tasks.estimates
    assert g["goal"].estimate - g["task"].estimate > 0 > t["goal"].estimate - t["task"].estimate
    for res in (goals, tasks):  # an interval cut at the scale's end says so
        for e in res.estimates.values():
            assert (e.bound is not None) == (e.low == 1.0 or e.high == 5.0)
            assert e.low <= e.estimate <= e.high
        for idx in res.indices.values():
            assert idx.low <= idx.value <= idx.high
