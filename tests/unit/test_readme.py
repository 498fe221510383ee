"""The README's test command is the one CI runs, so the README cannot drift from CI."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in readme.splitlines() if "pip install" in line and "[test]" in line)
    assert command in ci


def test_readme_has_the_demo_command():
    readme = (ROOT / "README.md").read_text()
    assert any("riverguard demo --events 20000" in line and "pip install" in line for line in readme.splitlines())
