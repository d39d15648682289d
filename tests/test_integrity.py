"""SHA-256 manifests: shipped files verified and pinned, tampering refused with one line naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alliance_nlp.cli import main
from alliance_nlp.errors import IntegrityError
from alliance_nlp.integrity import MANIFEST, PINNED, sha256_file, verify_file, verify_folder, write_manifest
from alliance_nlp.mapping import WaiMapping
from alliance_nlp.resources import resource_path, shipped_model_dir

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "session_cbt.txt"


def test_shipped_manifests_are_current_and_pinned():
    shipped = [("resources", resource_path())]
    shipped += [(f"models/{m}", shipped_model_dir(m)) for m in ("alliance-markers-v1", "alliance-markers-v2")]
    for key, folder in shipped:
        verify_folder(folder)  # every file listed and unchanged
        got = sha256_file(folder / MANIFEST)
        assert got == PINNED[key], f"update PINNED[{key!r}] in alliance_nlp/integrity.py to {got!r}"


def test_round_trip_and_every_kind_of_damage(tmp_path):
    d = tmp_path / "m"
    (d / "sub").mkdir(parents=True)
    (d / "a.json").write_text("{}")
    (d / "sub" / "b.bin").write_bytes(b"\x00\x01")
    write_manifest(d)
    assert (d / MANIFEST).read_text().splitlines()[1].endswith("  sub/b.bin")
    verify_folder(d)
    (d / "sub" / "b.bin").write_bytes(b"\x00\x02")
    with pytest.raises(IntegrityError, match=r"sub/b\.bin: SHA-256 differs"):
        verify_folder(d)
    write_manifest(d)
    (d / "extra.safetensors").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="extra.safetensors: not listed"):
        verify_folder(d)
    (d / "extra.safetensors").unlink()
    (d / "a.json").unlink()
    with pytest.raises(IntegrityError, match="a.json: listed in SHA256SUMS but missing"):
        verify_folder(d)
    (d / MANIFEST).write_text("nonsense\n")
    with pytest.raises(IntegrityError, match=r"SHA256SUMS:1: not a"):
        verify_folder(d)
    (d / MANIFEST).unlink()
    with pytest.raises(IntegrityError, match="no SHA256SUMS"):
        verify_folder(d)


def test_a_changed_manifest_of_shipped_files_is_caught_by_the_pin(tmp_path):
    copy = tmp_path / "resources"
    shutil.copytree(resource_path(), copy)
    verify_folder(copy, PINNED["resources"])
    role = copy / "role_model.json"
    d = json.loads(role.read_text())
    d["intercept"] = d["intercept"] + 3.0
    role.write_text(json.dumps(d))
    with pytest.raises(IntegrityError, match="role_model.json: SHA-256 differs"):
        verify_folder(copy, PINNED["resources"])
    write_manifest(copy)  # the attacker also rewrites the manifest
    with pytest.raises(IntegrityError, match="released with"):
        verify_folder(copy, PINNED["resources"])


def test_a_users_file_is_checked_against_its_folders_manifest(tmp_path):
    m = tmp_path / "lab" / "wai_mapping.json"
    m.parent.mkdir()
    shutil.copy(resource_path("wai_mapping.json"), m)
    write_manifest(m.parent)
    assert WaiMapping.load(m).models
    d = json.loads(m.read_text())
    d["meta"] = {**d.get("meta", {}), "edited": True}
    m.write_text(json.dumps(d))
    with pytest.raises(IntegrityError, match="wai_mapping.json: SHA-256 differs"):
        WaiMapping.load(m)
    plain = tmp_path / "mine.json"  # no manifest beside it: the user's own file, taken as it is
    shutil.copy(resource_path("wai_mapping.json"), plain)
    assert verify_file(plain) == plain


@pytest.mark.parametrize("target", ["config.json", "context.safetensors", "adapter/adapter_model.safetensors"])
def test_a_tampered_model_folder_is_refused_in_one_line(tmp_path, capsys, target):
    model = tmp_path / "model"
    shutil.copytree(shipped_model_dir(), model)
    f = model / target
    if target == "config.json":
        cfg = json.loads(f.read_text())
        cfg["calibration"]["threshold"][0] = 0.01  # an edited threshold would flip markers silently
        f.write_text(json.dumps(cfg))
    else:
        data = bytearray(f.read_bytes())
        data[-8:] = b"\xff" * 8  # corrupted weights would give NaN probabilities
        f.write_bytes(bytes(data))
    rc = main(["analyze", str(EXAMPLE), "--model", str(model), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and f"{target}: SHA-256 differs" in err[0]
    assert not (tmp_path / "out" / "session.json").exists()


def test_checksum_command_records_a_trusted_folder(tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(shipped_model_dir(), model)
    (model / MANIFEST).unlink()
    assert main(["checksum", str(model), "--check"]) == 2
    assert "no SHA256SUMS" in capsys.readouterr().err
    assert main(["checksum", str(model)]) == 0
    assert main(["checksum", str(model), "--check"]) == 0
