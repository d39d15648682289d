"""The wheel is a complete runtime: built from the checkout, installed into a fresh virtual environment,
it analyses a shipped example from a folder outside the checkout (the model and resources are package
data, nothing is looked up in the repository), and it carries no development code."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    shutil.copytree(
        ROOT,
        build / "src",
        ignore=shutil.ignore_patterns(".venv", ".git", "out", "build", "*.egg-info", "__pycache__", "cache", "tests"),
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(build / "src"),
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    (whl,) = dist.glob("alliance_nlp-*.whl")
    return whl


def test_wheel_holds_the_runtime_and_its_data_only(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "alliance_nlp/models/alliance-markers-v2/config.json",
        "alliance_nlp/models/alliance-markers-v2/context.safetensors",
        "alliance_nlp/models/alliance-markers-v2/adapter/adapter_model.safetensors",
        "alliance_nlp/models/alliance-markers-v2/README.md",
        "alliance_nlp/models/alliance-markers-v1/config.json",
        "alliance_nlp/resources/wai_mapping.json",
        "alliance_nlp/resources/role_model.json",
        "alliance_nlp/resources/scales/wai-sr.json",
        "alliance_nlp/py.typed",
        "alliance_nlp/resources/redaction/tagger.json.gz",
        "alliance_nlp/resources/redaction/gazetteers.json.gz",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("training/", "evaluation/", "tests/"))]


def test_installed_wheel_analyses_an_example_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # dependencies (torch, transformers, ...) come from this environment's site-packages, appended after the
    # fresh one, so `alliance_nlp` itself can only be the installed wheel
    fresh_site = next((venv / "lib").glob("python*/site-packages"))
    (fresh_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(ROOT / "data" / "examples" / "session_cbt.txt", work / "session.txt")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ALLIANCE_NLP_CLASSIFIER")}
    where = subprocess.run(
        [str(py), "-c", "import alliance_nlp; print(alliance_nlp.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(fresh_site)), where
    r = subprocess.run(
        [str(venv / "bin" / "alliance-nlp"), "analyze", "session.txt", "-o", "out", "-q"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert (
        summary["total"]["estimate"] is not None and summary["pipeline"]["classify"]["model"] == "alliance-markers-v2"
    )
