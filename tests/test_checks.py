"""Ratings files and instruments, agreement statistics, and the fit-mapping/check-ratings/course commands."""

import json

import numpy as np
import pytest

from alliance_nlp.agreement import agreement, icc_a1
from alliance_nlp.cli import main
from alliance_nlp.errors import InputError
from alliance_nlp.instruments import load_scale, read_ratings
from alliance_nlp.labels import LABELS
from alliance_nlp.session import Session, Speaker, Turn, Utterance


def test_wai_sr_items_to_subscales(tmp_path):
    scale = load_scale("wai-sr")
    f = tmp_path / "r.csv"
    # goal items 4,6,8,11 all 5; task items 1,2,10,12 all 1; bond 3,5,7,9 all 3
    vals = {4: 5, 6: 5, 8: 5, 11: 5, 1: 1, 2: 1, 10: 1, 12: 1, 3: 3, 5: 3, 7: 3, 9: 3}
    f.write_text(
        "session," + ",".join(f"item{i}" for i in range(1, 13)) + "\n"
        "s1," + ",".join(str(vals[i]) for i in range(1, 13)) + "\n"
    )
    r = read_ratings(f, scale)["s1"]
    assert (r["goal"], r["task"], r["bond"], r["total"]) == (5, 1, 3, 3)


def test_wai_seven_point_subscales_rescaled_and_errors_name_line(tmp_path):
    scale = load_scale("wai")
    f = tmp_path / "r.csv"
    f.write_text("session,goal,task,bond\na,7,1,4\nb,x,2,3\n")
    with pytest.raises(InputError, match=r"r.csv:3 \[goal\]: not a number"):
        read_ratings(f, scale)
    f.write_text("session,goal,task,bond\na,7,1,4\n")
    assert read_ratings(f, scale)["a"] == {"goal": 5.0, "task": 1.0, "bond": 3.0, "total": 3.0}
    f.write_text("session,item1,item2\na,3,4\n")
    with pytest.raises(InputError, match="item key"):
        read_ratings(f, scale)


def test_custom_scale_file_with_reverse_keying(tmp_path):
    sc = tmp_path / "star.json"
    sc.write_text(
        json.dumps(
            {
                "name": "MINI",
                "items": 3,
                "min": 0,
                "max": 4,
                "subscales": {"goal": [1], "task": [2], "bond": [3]},
                "reverse": [3],
            }
        )
    )
    f = tmp_path / "r.csv"
    f.write_text("id,q1,q2,q3\nx,4,0,0\n")
    r = read_ratings(f, load_scale(sc), id_column="id")["x"]
    assert (r["goal"], r["task"], r["bond"]) == (5.0, 1.0, 5.0)


def test_agreement_statistics():
    rng = np.random.default_rng(1)
    y = rng.uniform(2, 5, 40)
    assert icc_a1(y, y) == pytest.approx(1.0)
    assert icc_a1(y, y + 1) < 0.8  # absolute agreement penalises a constant offset
    res = agreement(y + rng.normal(0, 0.2, 40), y, n_boot=200)
    assert res["pearson_r"]["low"] <= res["pearson_r"]["value"] <= res["pearson_r"]["high"]
    assert res["pearson_r"]["value"] > 0.9 and res["mae"]["value"] < 0.3
    assert len(res["bland_altman"]["points"]) == 40


def _analysed(tmp_path, n=12):
    """Invented analysed sessions whose bond probability tracks a made-up rating."""
    rng = np.random.default_rng(0)
    rows = ["session,goal,task,bond"]
    for i in range(n):
        q = i / (n - 1)
        s = Session(f"s{i}", speakers={"T": Speaker("T", role="therapist"), "C": Speaker("C", role="client")})
        for j in range(30):
            spk = "T" if j % 2 == 0 else "C"
            p = {l: float(rng.uniform(0, 0.2)) for l in LABELS}
            p["bond"] = float(np.clip(q + rng.normal(0, 0.05), 0, 1))
            p["rupture_withdrawal"] = float(np.clip(1 - q + rng.normal(0, 0.05), 0, 1)) * (spk == "C")
            s.turns.append(
                Turn(
                    spk,
                    [Utterance(f"u{j}", spk, source=j, probabilities=p, markers=[l for l, v in p.items() if v > 0.5])],
                )
            )
        (tmp_path / "out" / s.id).mkdir(parents=True)
        s.save(tmp_path / "out" / s.id / "session.json")
        score = 2 + 2.5 * q
        rows.append(f"s{i},{score:.2f},{score:.2f},{score:.2f}")
    (tmp_path / "ratings.csv").write_text("\n".join(rows) + "\n")


def test_fit_mapping_then_check_ratings_cli(tmp_path, capsys):
    _analysed(tmp_path)
    mapping = tmp_path / "mapping.json"
    assert (
        main(
            [
                "fit-mapping",
                str(tmp_path / "out"),
                "--ratings",
                str(tmp_path / "ratings.csv"),
                "-o",
                str(mapping),
                "--alpha",
                "1",
            ]
        )
        == 0
    )
    assert json.loads(mapping.read_text())["meta"]["sessions"] == 12
    rep = tmp_path / "rep.json"
    assert (
        main(
            [
                "check-ratings",
                str(tmp_path / "out"),
                "--ratings",
                str(tmp_path / "ratings.csv"),
                "--mapping",
                str(mapping),
                "-o",
                str(rep),
                "--n-boot",
                "100",
            ]
        )
        == 0
    )
    r = json.loads(rep.read_text())
    assert r["sessions_matched"] == 12 and r["subscales"]["bond"]["spearman_rho"]["value"] > 0.8
    assert "ICC" in capsys.readouterr().out
    bond = r["subscales"]["bond"]
    assert 0 <= bond["interval_coverage"] <= 1 and bond["interval_median_width"] > 0
    assert bond["mae_predicting_the_mean"] > bond["mae"]["value"]  # better than predicting the mean
    # a binary outcome (good vs poor session): AUC of each estimate, with its interval
    rows = (tmp_path / "ratings.csv").read_text().splitlines()
    rows = [rows[0] + ",quality"] + [row + (",good" if i >= 6 else ",poor") for i, row in enumerate(rows[1:])]
    (tmp_path / "ratings.csv").write_text("\n".join(rows) + "\n")
    args = ["check-ratings", str(tmp_path / "out"), "--ratings", str(tmp_path / "ratings.csv")]
    assert main([*args, "--mapping", str(mapping), "-o", str(rep), "--n-boot", "100", "--outcome", "quality"]) == 0
    auc = json.loads(rep.read_text())["outcome"]["auc_by_scale"]["bond"]
    assert auc["positives"] == 6 and auc["auc"]["value"] > 0.9
    assert "AUC of bond for quality" in capsys.readouterr().out
    assert main([*args, "--outcome", "nope"]) == 2
    assert "no 'nope' column" in capsys.readouterr().err


def test_old_command_spellings_still_work_with_a_notice(tmp_path, capsys):
    _analysed(tmp_path)
    cal = tmp_path / "cal.json"
    assert (
        main(
            [
                "calibrate",
                str(tmp_path / "out"),
                "--ratings",
                str(tmp_path / "ratings.csv"),
                "-o",
                str(cal),
                "--alpha",
                "1",
            ]
        )
        == 0
    )
    assert "'calibrate' is deprecated" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "out"),
                "--ratings",
                str(tmp_path / "ratings.csv"),
                "--calibration",
                str(cal),
                "--n-boot",
                "50",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "'evaluate' is deprecated" in err and "--calibration is deprecated" in err


def test_check_ratings_prints_undefined_intervals_as_na(tmp_path, capsys):
    """Three sessions with constant ratings: correlations and their intervals are undefined, not a crash."""
    _analysed(tmp_path, n=3)
    flat = tmp_path / "flat.csv"
    flat.write_text("session,goal,task,bond\ns0,3,3,3\ns1,3,3,3\ns2,3,3,3\n")
    assert main(["check-ratings", str(tmp_path / "out"), "--ratings", str(flat), "--n-boot", "50"]) == 0
    assert "n/a" in capsys.readouterr().out


def test_missing_mapping_file_is_one_line(tmp_path, capsys):
    _analysed(tmp_path, n=5)
    assert (
        main(
            [
                "check-ratings",
                str(tmp_path / "out"),
                "--ratings",
                str(tmp_path / "ratings.csv"),
                "--mapping",
                str(tmp_path / "absent.json"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "absent.json: mapping file not found" in err and len(err.splitlines()) == 1


def test_course_command(tmp_path, capsys):
    _analysed(tmp_path, n=6)
    cal = tmp_path / "mapping.json"
    main(
        [
            "fit-mapping",
            str(tmp_path / "out"),
            "--ratings",
            str(tmp_path / "ratings.csv"),
            "-o",
            str(cal),
            "--alpha",
            "1",
        ]
    )
    clients = tmp_path / "clients.csv"
    clients.write_text("session,client,order\ns5,k,1\ns0,k,2\ns4,k,3\n")
    out = tmp_path / "course.json"
    assert (
        main(["course", str(tmp_path / "out"), "--clients", str(clients), "--mapping", str(cal), "-o", str(out)]) == 0
    )
    c = json.loads(out.read_text())["k"]
    assert [x["session"] for x in c["sessions"]] == ["s5", "s0", "s4"] and c["shape"] == "high-low-high"


def test_evaluate_reports_bad_ratings_file_as_one_line(tmp_path, capsys):
    _analysed(tmp_path, n=5)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,goal\n")
    assert main(["check-ratings", str(tmp_path / "out"), "--ratings", str(bad)]) == 2
    assert "no 'session' column" in capsys.readouterr().err
