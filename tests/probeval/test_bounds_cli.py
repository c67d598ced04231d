"""`probeval bounds` as a real process: the installed console script from .venv."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from probeval.cli import main
from shared.bounds import compute_bounds
from shared.schemas import BoundsOptions

SCRIPT = Path(sys.executable).with_name("probeval")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "probeval"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "bounds", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_json_file_ragged_rows(tmp_path: Path) -> None:
    rows = [[0, 1, 1, 0, 1], [0.2, 0.5, 0.9], [1.0]]
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"scores": rows}))
    p = run("--alpha", "0.05", "--threshold", "0.3", "--threshold", "0.8",
            "--quantile", "0.5", "--ed-lambda", "2", str(f))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    doc = json.loads(p.stdout)  # exactly one JSON document
    assert doc["alpha"] == 0.05 and [r["n"] for r in doc["rows"]] == [5, 3, 1]
    expected = compute_bounds(
        rows, BoundsOptions(alpha=0.05, thresholds=[0.3, 0.8], quantiles=[0.5], ed_lambda=2)
    )
    assert doc == json.loads(expected.model_dump_json(by_alias=True))
    assert doc["rows"][0]["binary"]["k"] == 3 and doc["rows"][1]["binary"] is None
    assert doc["rows"][1]["ed"]["lambda"] == 2.0


def test_npy_and_stdin_agree(tmp_path: Path) -> None:
    x = np.random.default_rng(0).beta(2, 5, size=(4, 50))
    f = tmp_path / "s.npy"
    np.save(f, x)
    from_npy = run("--threshold", "0.5", str(f))
    from_stdin = run("--threshold", "0.5", "-", stdin=json.dumps({"scores": x.tolist()}))
    assert from_npy.returncode == 0 and from_stdin.returncode == 0
    assert json.loads(from_npy.stdout) == json.loads(from_stdin.stdout)
    assert json.loads(from_npy.stdout)["alpha"] == 0.01  # the default


def _write(tmp_path: Path, name: str, content: object) -> str:
    f = tmp_path / name
    if name.endswith(".npy"):
        np.save(f, content, allow_pickle=True)
    else:
        f.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(f)


BAD = [
    ("nan.json", '{"scores": [[0.1, 0.2], [0.3, NaN]]}', [], "scores[1][1] is NaN"),
    ("out.json", {"scores": [[0.1], [0.2], [1.5]]}, [], "scores[2][0] is 1.5"),
    ("neg.json", {"scores": [[-0.5]]}, [], "scores[0][0] is -0.5"),
    ("empty.json", {"scores": [[0.1], []]}, [], "scores[1] is empty"),
    ("ok.json", {"scores": [[0.1]]}, ["--alpha", "0"], "--alpha must be a number in (0, 0.5]"),
    ("ok.json", {"scores": [[0.1]]}, ["--alpha", "1.5"], "--alpha must be a number in (0, 0.5]"),
    ("ok.json", {"scores": [[0.1]]}, ["--alpha", "nan"], "--alpha must be a number in (0, 0.5]"),
    ("ok.json", {"scores": [[0.1]]}, ["--threshold", "2"], "--threshold must be a number in"),
    ("bad.json", "{not json", [], "is not valid JSON"),
    ("noscores.json", {"rows": [[0.1]]}, [], 'with a "scores" key'),
    ("ragged.npy", np.array([[0.1, 0.2], [0.3]], dtype=object), [], "ragged rows"),
    ("flat.npy", np.array([0.1, 0.2]), [], "allowed: a 2-D float array"),
    ("inf.npy", np.array([[0.1, np.inf]]), [], "scores[0][1] is infinite"),
    ("s.csv", "0.1,0.2", [], "FILE must end in .json or .npy"),
]  # fmt: skip


def _assert_usage_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0] and lines[0].startswith("probeval bounds: ")
    if "scores[" in fragment:
        assert "allowed: " in lines[0]


@pytest.mark.parametrize(("name", "content", "flags", "fragment"), BAD)
def test_bad_input_exit_2_one_line_nothing_on_stdout(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: object,
    flags: list[str],
    fragment: str,
) -> None:
    # In-process through the same entry point as the console script (a process each is slow).
    code = main(["bounds", *flags, _write(tmp_path, name, content)])
    captured = capsys.readouterr()
    _assert_usage_error(code, captured.out, captured.err, fragment)


@pytest.mark.parametrize("case", [0, 4, 10], ids=["nan-json", "alpha", "ragged-npy"])
def test_bad_input_as_a_real_process(tmp_path: Path, case: int) -> None:
    name, content, flags, fragment = BAD[case]
    p = run(*flags, _write(tmp_path, name, content))
    _assert_usage_error(p.returncode, p.stdout, p.stderr, fragment)


def test_unreadable_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bounds", str(tmp_path / "missing.json")])
    captured = capsys.readouterr()
    _assert_usage_error(code, captured.out, captured.err, "cannot read")
    (tmp_path / "dir.json").mkdir()
    code = main(["bounds", str(tmp_path / "dir.json")])
    captured = capsys.readouterr()
    _assert_usage_error(code, captured.out, captured.err, "cannot read")


def test_output_numbers_are_finite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc_in = json.dumps({"scores": [[0.0] * 3, [1.0] * 3, [0.5]]})
    monkeypatch.setattr(sys, "stdin", io.StringIO(doc_in))
    assert main(["bounds", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)

    def walk(v: object) -> None:
        if isinstance(v, float):
            assert math.isfinite(v)
        elif isinstance(v, dict):
            for w in v.values():
                walk(w)
        elif isinstance(v, list):
            for w in v:
                walk(w)

    walk(doc)
