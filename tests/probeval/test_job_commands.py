"""Bad input to the CLI's job commands: exit code 2 and one line on stderr naming the problem,
before anything is sent (no gateway runs here: an unreachable one is exit code 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probeval.cli import main
from probeval.local import free_port

JOB = {"model": "tiny", "prompts": [{"id": "q", "prompt": "p", "reference": "r"}]}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def nowhere(monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("PROBEVAL_URL", url)
    return url


def test_job_file_errors_name_the_file_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nowhere: str
) -> None:
    txt = tmp_path / "job.txt"
    txt.write_text("{}")
    code, out, err = run(capsys, "submit", str(txt))
    assert code == 2 and out == "" and ".json, .yaml and .yml" in one_line(err)

    bad = tmp_path / "job.yaml"
    bad.write_text("model: tiny\nprompts:\n  - {id: q, prompt: p}\nsampling: {n: -3}\n")
    code, out, err = run(capsys, "submit", str(bad))
    assert code == 2 and "sampling.n" in one_line(err) and str(bad) in err

    broken = tmp_path / "job.json"
    broken.write_text("{not json")
    code, _, err = run(capsys, "submit", str(broken))
    assert code == 2 and "cannot read" in one_line(err)

    code, _, err = run(capsys, "submit", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in one_line(err)


def test_unreachable_gateway_is_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nowhere: str
) -> None:
    good = tmp_path / "job.json"
    good.write_text(json.dumps(JOB))
    code, out, err = run(capsys, "submit", str(good))
    assert code == 1 and out == "" and "cannot reach the gateway" in one_line(err)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["export", "j", "--format", "xml", "-o", "x"], "invalid choice: 'xml'"),
        (["export", "j", "--format", "parquet"], "-o/--output"),
        (["results", "j", "--format", "yaml"], "invalid choice: 'yaml'"),
        (["jobs", "--status", "done"], "invalid choice: 'done'"),
        (["jobs", "--limit", "0"], "--limit must be in 1..200"),
        (["rescore", "j", "--scorer", "bleu"], "--scorer"),
        (["rescore", "j", "--scorer", "regex"], "pattern"),
        (
            ["rescore", "j", "--scorer", "contains", "--alpha", "2"],
            "--alpha must be a number in (0, 0.5]",
        ),
        (["rescore", "j", "--scorer", "contains", "--threshold", "1.5"], "--threshold"),
    ],
)
def test_bad_flags(
    capsys: pytest.CaptureFixture[str], nowhere: str, argv: list[str], words: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert words in one_line(err), err
