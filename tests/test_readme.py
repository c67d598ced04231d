"""The README stays true: every setting is documented, and CI runs the README's test command."""

from pathlib import Path

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in Settings.model_fields if f"`PROBEVAL_{n.upper()}`" not in readme]
    assert not missing, f"README's configuration table lacks {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_static_checks_before_the_tests() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert ci.index("lint typecheck") < ci.index('make "$@" test')
    assert "ruff check $(LINTED)" in makefile and "ruff format --check $(LINTED)" in makefile
    assert "mypy $(PACKAGES)" in makefile
    assert "PACKAGES := shared services workers probeval" in makefile
