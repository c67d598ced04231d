"""`probeval bounds --sequential`: rows read as streams and stopped by the same code the scorer
calls (shared.sequential); bad input is exit 2 with one line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from probeval.cli import main
from shared.schemas import BoundsOptions, StoppingSpec
from shared.sequential import run_sequential

SCRIPT = Path(sys.executable).with_name("probeval")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "probeval"]


def rows() -> list[list[float]]:
    rng = np.random.default_rng(4)
    return [
        (rng.random(300) < 0.6).astype(float).tolist(),  # clearly above 0.1
        [0.0] * 300,  # below 0.1 after about 60 draws at alpha 0.05
        (rng.random(40) < 0.1).astype(float).tolist(),  # too short to decide
        rng.beta(2, 5, size=300).tolist(),  # scores in between: P(score = 1) = 0
    ]


def test_matches_the_library_and_stops_each_row(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"scores": rows()}))
    p = subprocess.run(
        [*COMMAND, "bounds", "--sequential", "--target", "p_full", "--threshold", "0.1",
         "--min-n", "16", "--max-n", "300", "--round", "16", "--alpha", "0.05",
         "--survival", "0.5", "--quantile", "0.9", str(f)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    spec = StoppingSpec(target="p_full", threshold=0.1, min_n=16, max_n=300, round=16)
    options = BoundsOptions(alpha=0.05, thresholds=[0.5], quantiles=[0.9])
    assert doc == run_sequential(rows(), spec, options).model_dump(mode="json", by_alias=True)
    got = [(r["decision"], r["reason"], r["n_used"]) for r in doc["rows"]]
    assert got[0] == ("above", "threshold", 16)
    assert got[1][:2] == ("below", "threshold") and got[1][2] < 300 and got[1][2] % 16 == 0
    assert got[2] == ("undecided", "end_of_row", 40)
    assert got[3][:2] == ("below", "threshold")
    assert doc["rows"][3]["anytime"]["survival"][0]["x"] == 0.5


def test_width_rule_on_the_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.npy"
    np.save(f, np.random.default_rng(1).beta(2, 5, size=(2, 2000)))
    assert main(["bounds", "--sequential", "--target", "mean", "--width", "0.2", str(f)]) == 0
    doc = json.loads(capsys.readouterr().out)
    for r in doc["rows"]:
        assert r["decision"] == "estimated" and r["upper"] - r["lower"] <= 0.2
        assert r["n_used"] < 2000 and r["n_used"] % 64 == 0
    assert doc["stopping"]["max_n"] == 2000  # the longest row by default


BAD = [
    (["--target", "p_full"], "--threshold: give exactly one of threshold and width"),
    (["--target", "p_full", "--threshold", "0.1", "--width", "0.1"], "exactly one"),
    (["--target", "median", "--threshold", "0.1"], "--target: input should be 'p_full'"),
    (["--threshold", "0.1"], "--sequential needs --target"),
    (["--target", "survival", "--threshold", "0.1"], "--x: target 'survival' needs x"),
    (["--target", "p_full", "--x", "0.5", "--threshold", "0.1"], "--x: x is only for"),
    (["--target", "p_full", "--threshold", "1.5"], "--threshold: input should be less than 1, got 1.5"),
    (["--target", "p_full", "--threshold", "0.1", "--threshold", "0.2"], "give it once"),
    (["--target", "mean", "--width", "0"], "--width: input should be greater than 0, got 0.0"),
    (["--target", "mean", "--width", "0.1", "--min-n", "0"], "--min-n: input should be greater than or equal to 1"),
    (["--target", "mean", "--width", "0.1", "--max-n", "0"], "--max-n: input should be greater than or equal to 1"),
    (["--target", "mean", "--width", "0.1", "--round", "0"], "--round: input should be greater than or equal to 1"),
    (["--target", "mean", "--width", "0.1", "--alpha", "0.7"], "--alpha must be a number in"),
    (["--target", "mean", "--width", "0.1", "--min-n", "50"], "--min-n: 50 is not allowed"),
    (["--target", "mean", "--width", "0.1", "--round", "4"], "--round: 4 is not allowed"),
    (["--target", "p_full", "--threshold", "0.1", "--futility", "0"], "--futility: input should be greater than 0, got 0.0"),
    (["--target", "p_full", "--threshold", "0.1", "--futility", "0.6"], "--futility: input should be less than or equal to 0.5, got 0.6"),
    (["--target", "p_full", "--threshold", "0.1", "--futility", "x"], "--futility: invalid float value: 'x'"),
    (["--target", "mean", "--threshold", "0.1", "--futility", "0.05"], "--futility: futility is not available for target 'mean'; allowed targets: p_full, survival"),
    (["--target", "p_full", "--width", "0.1", "--futility", "0.05"], "--futility: futility needs a threshold rule"),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "fragment"), BAD)
def test_bad_stopping_flags_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], fragment: str
) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"scores": [[0.0, 1.0, 0.5]]}))
    code = main(["bounds", "--sequential", *flags, str(f)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("probeval bounds: ") and fragment in lines[0], (
        captured.err
    )


@pytest.mark.parametrize(
    "flag",
    [["--width", "0.1"], ["--target", "mean"], ["--survival", "0.5"], ["--futility", "0.05"]],
)
def test_stopping_flags_need_sequential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: list[str]
) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"scores": [[0.0, 1.0, 0.5]]}))
    assert main(["bounds", *flag, str(f)]) == 2
    assert "needs --sequential" in capsys.readouterr().err


def test_futility_gives_up_rows_near_the_threshold_and_decides_the_others(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    rows = [
        (rng.random(1024) < 0.01).astype(float).tolist(),  # at the threshold: never decidable
        [0.0] * 1024,  # certified below
        (rng.random(1024) < 0.2).astype(float).tolist(),  # certified above
    ]
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"scores": rows}))
    flags = ["--target", "p_full", "--threshold", "0.01", "--min-n", "16", "--round", "16",
             "--alpha", "0.01", str(f)]  # fmt: skip
    out = {}
    for futility in (None, "0.05"):
        extra = [] if futility is None else ["--futility", futility]
        p = subprocess.run(
            [*COMMAND, "bounds", "--sequential", *extra, *flags],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        out[futility] = json.loads(p.stdout)
    plain = [(r["decision"], r["reason"], r["n_used"]) for r in out[None]["rows"]]
    futile = [(r["decision"], r["reason"], r["n_used"]) for r in out["0.05"]["rows"]]
    assert plain[0] == ("undecided", "max_n", 1024)
    assert futile[0][:2] == ("undecided", "futile") and futile[0][2] < 1024
    assert futile[1:] == plain[1:] and [d for d, _, _ in plain[1:]] == ["below", "above"]
    spec = StoppingSpec(
        target="p_full", threshold=0.01, min_n=16, max_n=1024, round=16, futility=0.05
    )
    expected = run_sequential(rows, spec, BoundsOptions(alpha=0.01))
    assert out["0.05"] == expected.model_dump(mode="json", by_alias=True)
