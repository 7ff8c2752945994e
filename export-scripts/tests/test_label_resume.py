"""`cxr-export label` loses no work and reads every kind of input the same way:

- a run killed (SIGKILL) after some batches keeps its finished rows (CSV lines and Parquet parts); `--resume` labels
  only the rest, and the final CSV is byte-identical to an uninterrupted run; a resume with another threshold is
  refused with a message naming it;
- the same images as a folder, as a zip and as a CSV list of paths (with a label column) give the same CSV.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from conftest import REPO_ROOT

from test_label_parity import py_label

N_PER_CLASS = 40


@pytest.fixture(scope="module")
def folder(tmp_path_factory, shared_dir):
    src = shared_dir / "data" / "kermany-cxr-224" / "test"
    inp = tmp_path_factory.mktemp("resume") / "in"
    for cls in ("NORMAL", "PNEUMONIA"):
        (inp / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:N_PER_CLASS]:
            (inp / cls / f.name).symlink_to(f)
    return inp


def _cmd(inp, out, *extra):
    return [sys.executable, "-m", "cxr_export", "label", str(inp), "--out", str(out), "--batch", "4", *extra]


def test_killed_run_resumes_to_the_same_csv(folder, tmp_path):
    whole = py_label(folder, tmp_path / "whole", "--batch", "4")
    out = tmp_path / "stopped"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "export-scripts")}
    p = subprocess.Popen(_cmd(folder, out), cwd=REPO_ROOT / "export-scripts", env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and len(list((out / ".progress").glob("part-*.parquet"))) < 2:
        time.sleep(0.02)
    assert p.poll() is None, "the run finished before it could be stopped"
    p.send_signal(signal.SIGKILL)
    p.wait()
    kept = len(list((out / ".progress").glob("part-*.parquet")))
    lines = (out / "labeled_dataset.csv").read_bytes().count(b"\r\n")
    assert kept >= 2 and lines >= 1 + 4 * 2  # header + the rows of the parts written before the kill

    r = subprocess.run(_cmd(folder, out, "--resume", "--threshold", "0.3"), cwd=REPO_ROOT / "export-scripts", env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "threshold" in r.stderr and "--resume" in r.stderr, r.stderr

    resumed = py_label(folder, out, "--batch", "4", "--resume")
    assert 8 <= resumed["resumed_rows"] < 2 * N_PER_CLASS
    assert (out / "labeled_dataset.csv").read_bytes() == (tmp_path / "whole" / "labeled_dataset.csv").read_bytes()
    assert resumed["n"] == whole["n"] == 2 * N_PER_CLASS and resumed["auc"] == whole["auc"]
    assert not (out / ".progress").exists()


def test_folder_zip_and_list_give_the_same_csv(folder, tmp_path):
    files = sorted(f.relative_to(folder).as_posix() for f in folder.rglob("*.jpeg"))[::8]
    sub = tmp_path / "sub"
    for rel in files:
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        (sub / rel).symlink_to(folder / rel)
    with zipfile.ZipFile(tmp_path / "in.zip", "w") as z:
        for rel in files:
            z.write(folder / rel, rel)
        z.writestr("__MACOSX/._x.jpeg", b"junk")  # left out, as the app's zip reader does
    lst = tmp_path / "list.csv"
    lst.write_text("path,label\n" + "".join(f"sub/{rel},{rel.split('/')[0]}\n" for rel in files))
    py_label(sub, tmp_path / "dir")
    py_label(tmp_path / "in.zip", tmp_path / "zip")
    py_label(lst, tmp_path / "list")
    text = lambda d: (tmp_path / d / "labeled_dataset.csv").read_bytes().decode()  # noqa: E731  (CRLF kept)
    a = text("dir")
    assert a.count("\r\n") == len(files) + 1
    assert text("zip") == a
    # a list's image_id is the path as written in it
    assert text("list") == a.replace("\r\nNORMAL/", "\r\nsub/NORMAL/").replace("\r\nPNEUMONIA/", "\r\nsub/PNEUMONIA/")


def test_bad_input_is_refused_naming_it(tmp_path):
    (tmp_path / "list.csv").write_text("filename_typo,label\nx.png,NORMAL\n")
    r = subprocess.run([sys.executable, "-m", "cxr_export", "label", str(tmp_path / "list.csv"), "--out", str(tmp_path / "o")],
                       cwd=REPO_ROOT / "export-scripts", capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "export-scripts")})
    assert r.returncode == 1 and "no image column" in r.stderr and "filename_typo" in r.stderr


def test_truth_csv_gives_the_ground_truth_of_a_flat_folder(tmp_path, shared_dir):
    """--truth: Kermany's own labels.csv (paths like test/NORMAL/x.jpeg) labels a flat folder of those files, matched
    by path suffix / basename as app/lib/batch/ground-truth.ts does."""
    import csv as csvmod

    root = shared_dir / "data" / "kermany-cxr-224"
    ref = {r["path"]: r["label"] for r in csvmod.DictReader(open(root / "labels.csv"))}
    picked = [p for p in sorted(ref) if p.startswith("test/")][::90]
    (tmp_path / "flat").mkdir()
    for p in picked:
        (tmp_path / "flat" / p.rsplit("/", 1)[1]).symlink_to(root / p)
    py_label(tmp_path / "flat", tmp_path / "out", "--truth", str(root / "labels.csv"))
    got = {r["image_id"]: r["ground_truth"] for r in csvmod.DictReader(open(tmp_path / "out" / "labeled_dataset.csv"))}
    assert got == {p.rsplit("/", 1)[1]: ref[p] for p in picked} and {"NORMAL", "PNEUMONIA"} <= set(got.values())


def test_zip_with_unsafe_and_unsupported_entries_lists_like_npm_run_label(tmp_path, shared_dir):
    """Entry names like '../x.jpeg' or 'a\\..\\y.jpeg' become the same safe image_ids as in the app's zip reader
    (zip-paths.ts: '..' segments dropped, not resolved), a bzip2 entry is skipped and counted, and `npm run label` on the same zip agrees."""
    from test_label_parity import node_label

    src = sorted((shared_dir / "data" / "kermany-cxr-224" / "test" / "NORMAL").iterdir())[:4]
    z = tmp_path / "odd.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(src[0], "../escape.jpeg")
        zf.write(src[1], "NORMAL\\..\\..\\win.jpeg")
        zf.write(src[2], "NORMAL/plain.jpeg")
        zf.write(src[3], "NORMAL/bz.jpeg", compress_type=zipfile.ZIP_BZIP2)
    py = py_label(z, tmp_path / "py")
    node = node_label(z, tmp_path / "node" / "labeled_dataset.csv")
    ids = lambda p: [line.split(",")[0] for line in p.read_bytes().decode().split("\r\n")[1:] if line]  # noqa: E731
    got = ids(tmp_path / "py" / "labeled_dataset.csv")
    assert got == ids(tmp_path / "node" / "labeled_dataset.csv")
    assert sorted(got) == ["NORMAL/plain.jpeg", "NORMAL/win.jpeg", "escape.jpeg"]  # ".." dropped, as zipfile does
    assert py["n"] == node["n"] == 3 and py["skipped"] == node["skipped"] == 1
