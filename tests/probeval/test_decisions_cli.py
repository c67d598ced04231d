"""``probeval compare --scores`` (offline), ``probeval plan`` and ``probeval bounds --k``: the
same numbers as the library, and bad input as exit code 2 with one line on stderr. (The job-id
form of ``probeval compare`` runs against a real gateway in tests/e2e/test_compare_models.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probeval.cli import main
from shared.comparison import compare_scores
from shared.schemas import CompareOptions


def _files(tmp_path: Path) -> tuple[str, str]:
    a = {"ids": ["x", "y"], "scores": [[1.0] * 90 + [0.0] * 10, [0.0] * 100]}
    b = {"ids": ["x", "y"], "scores": [[0.0] * 95 + [1.0] * 5, [0.0] * 99 + [1.0]]}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    return str(tmp_path / "a.json"), str(tmp_path / "b.json")


def test_offline_compare_prints_the_library_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _files(tmp_path)
    code = main(["compare", "--scores", "--target", "p_full", "--family", "holm", "--json", a, b])
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    docs = [json.loads(Path(f).read_text()) for f in (a, b)]
    want = compare_scores(
        ["x", "y"], docs[0]["scores"], docs[1]["scores"],
        CompareOptions(target="p_full", family="holm"), a=a, b=b,
    )  # fmt: skip
    assert got == json.loads(want.model_dump_json())
    assert [p["decision"] for p in got["prompts"]] == ["b lower", "no difference shown"]
    assert main(["compare", "--scores", a, b]) == 0
    table = capsys.readouterr().out
    assert "b lower" in table and "x " in table


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--target", "median"], "--target must be one of mean, p_full, leak@k"),
        (["--k", "0"], "--k must be an integer in [1, 100000]"),
        (["--family", "sidak"], "--family must be one of none, bonferroni, holm"),
    ],
)
def test_offline_compare_bad_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    a, b = _files(tmp_path)
    assert main(["compare", "--scores", *flags, a, b]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_offline_compare_refuses_different_prompts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = _files(tmp_path)
    (tmp_path / "c.json").write_text(json.dumps({"ids": ["x", "z"], "scores": [[0.0], [1.0]]}))
    assert main(["compare", "--scores", a, str(tmp_path / "c.json")]) == 2
    assert "different ids" in capsys.readouterr().err
    (tmp_path / "d.json").write_text(json.dumps({"scores": [[0.0]]}))
    assert main(["compare", "--scores", a, str(tmp_path / "d.json")]) == 2
    assert "rows" in capsys.readouterr().err


def test_plan_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--target", "certify", "--tau", "0.01", "--alpha", "0.01"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 459
    assert main(["plan", "--target", "certify"]) == 2
    assert "needs 'tau'" in capsys.readouterr().err
    assert main(["plan", "--target", "leak_at_k", "--k", "0", "--level", "0.1"]) == 2
    assert "--k must be an integer in [1, 100000]" in capsys.readouterr().err


def test_plan_with_a_model_needs_a_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--target", "certify", "--tau", "0.01", "--model", "m"]
    assert main([*argv, "--url", "http://127.0.0.1:9"]) == 1
    assert "no answer from the gateway" in capsys.readouterr().err


def test_bounds_cli_has_leak_at_k(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"scores": [[1.0, 0.0, 0.0, 0.0]]}))
    assert main(["bounds", "--k", "2", "--k", "9", str(tmp_path / "s.json")]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert [(x["k"], x["estimate"]) for x in row["leak_at_k"]] == [(2, 0.5), (9, None)]
    assert main(["bounds", str(tmp_path / "s.json")]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert [x["k"] for x in row["leak_at_k"]] == [1, 10, 100]
