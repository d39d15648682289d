"""Architecture contracts: every registered component on a shipped example, pipeline contracts checked
at build time, one-line errors, and a golden output that pins the shipped model's behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alliance_nlp import Pipeline, analyze
from alliance_nlp.cli import main
from alliance_nlp.errors import PipelineError
from alliance_nlp.ingest import read
from alliance_nlp.labels import LABELS
from alliance_nlp.pipeline import CAPABILITIES, DEFAULT_STEPS, INGESTED, REGISTRY, capabilities, check_contracts

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "session_cbt.txt"
GOLDEN = Path(__file__).parent / "data" / "golden_session_cbt.json"


@pytest.fixture(scope="module")
def components():
    return {name: spec.factory() for name, spec in REGISTRY.items()}


def test_every_component_honours_its_contract_on_a_shipped_example(components):
    """Run each registered component in the default order; what it assigns must hold afterwards, and
    what it requires must hold before (so the declared contract is the real one)."""
    session = read(EXAMPLE)
    assert capabilities(session) >= set(INGESTED)
    optional = ("redact",)  # not a default step: added last by --redact, first by --redact-input
    for name in (*DEFAULT_STEPS, *optional):
        spec = REGISTRY[name]
        assert set(spec.requires) <= capabilities(session), f"{name} ran without its requirements"
        session = components[name](session)
        for cap in spec.assigns:
            assert CAPABILITIES[cap](session), f"{name} did not assign {cap}"
        assert name in session.provenance
    assert set(REGISTRY) == {*DEFAULT_STEPS, *optional}
    assert capabilities(session) >= {"turns", "roles", "units", "markers", "estimates"}  # redact keeps them


def test_unmet_requirements_fail_at_build_time_with_one_line():
    with pytest.raises(PipelineError, match="'aggregate' requires markers.*add 'classify' before it"):
        Pipeline.from_names(["diarize", "aggregate"])
    with pytest.raises(PipelineError, match="unknown pipeline component 'clasify'"):
        check_contracts(["diarize", "clasify"])
    check_contracts(["aggregate"], provided={"turns", "roles", "units", "markers"})  # continuing a saved session


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--steps", "diarize,aggregate"], "'aggregate' requires markers"),
        (["--steps", "diarize,nonsense"], "unknown pipeline component 'nonsense'"),
        (["--mapping", "absent_mapping.json"], "absent_mapping.json: mapping file not found"),
        (["--model", "absent_model"], "absent_model: no alliance-marker classifier here"),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, needle):
    code = main(["analyze", str(EXAMPLE), "-o", str(tmp_path / "out"), "-q", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err


def test_a_broken_model_folder_is_one_line_with_exit_2(tmp_path, capsys):
    import shutil

    from alliance_nlp.classify import default_model_path

    model = tmp_path / "model"
    shutil.copytree(default_model_path(), model)
    (model / "context.safetensors").write_bytes(b"\0" * 64)
    assert main(["analyze", str(EXAMPLE), "-o", str(tmp_path / "out"), "-q", "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert "context.safetensors" in err and len(err.splitlines()) == 1


def _classified(session) -> list[list[float]]:
    return [[round(u.probabilities[lab], 6) for lab in LABELS] for u in session.utterances]


def test_golden_probabilities_of_the_shipped_model(components):
    """The shipped model's probabilities on a shipped example are pinned (1e-4): a silent change of
    behaviour (model files, units, tokenisation, merging) fails CI. Regenerate deliberately with
    `python tests/test_contracts.py --write-golden` and say why in the CHANGELOG."""
    session = read(EXAMPLE)
    for name in ("diarize", "segment", "classify"):
        session = components[name](session)
    golden = json.loads(GOLDEN.read_text())
    assert [u.text for u in session.utterances] == golden["texts"]
    np.testing.assert_allclose(np.array(_classified(session)), np.array(golden["probabilities"]), atol=1e-4)


def test_pipe_batches_sessions_and_isolates_failures(tmp_path):
    """analyze on a folder streams sessions through Pipeline.pipe; a broken file is reported, the rest
    written, and the results equal one-by-one analysis."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text(EXAMPLE.read_text())
    (folder / "broken.csv").write_text("nothing,useful\n1,2\n")
    report = analyze([folder], tmp_path / "out", batch_size=2)
    assert report.processed == 3 and [f["file"] for f in report.failed] == [str(folder / "broken.csv")]
    one = json.loads((tmp_path / "out" / "a" / "summary.json").read_text())
    single = analyze([folder / "a.txt"], tmp_path / "single")
    assert single.processed == 1
    again = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert one["total"] == again["total"] and one["markers"] == again["markers"]
    assert json.loads((tmp_path / "out" / "batch_report.json").read_text())["processed"] == 3


if __name__ == "__main__":
    import sys

    if "--write-golden" in sys.argv:
        s = Pipeline.from_names(["diarize", "segment", "classify"])(read(EXAMPLE))
        GOLDEN.write_text(
            json.dumps(
                {"example": EXAMPLE.name, "texts": [u.text for u in s.utterances], "probabilities": _classified(s)},
                indent=0,
            )
            + "\n"
        )
        print(f"wrote {GOLDEN}")
