"""`kubectl finetune validate` and `revision` as a user runs them: real files, stdin, exit codes."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.api_cases import CASES, EXAMPLES, load_example

CLI = [sys.executable, "-m", "ftrelease.cli.main"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, check=False)


def test_clean_directory_exits_zero():
    result = run("validate", str(EXAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "3 releases checked, 0 with problems" in result.stderr


def test_problems_are_printed_as_file_kind_name_path_message_and_exit_one(tmp_path):
    bad = CASES[0].document()  # base revision "main"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = run("validate", str(path))
    assert result.returncode == 1
    line = result.stdout.strip().splitlines()[0]
    assert line.startswith(f"{path}: FineTuneRelease/support-bot: spec.bundle.baseModel.revision: ")
    assert "never a branch or tag" in line


def test_multi_document_yaml_checks_each_release_and_ignores_other_kinds(tmp_path):
    good = load_example()
    bad = CASES[5].document()  # short artifact digest
    bad["metadata"]["name"] = "second"
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all([good, service, bad]))
    result = run("validate", str(path))
    assert result.returncode == 1
    assert "2 releases checked, 1 with problems" in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines, "the bad release's problem is printed"
    assert all("FineTuneRelease/second: spec.bundle.artifact.digest" in line for line in lines)


def test_stdin_and_recursive_directories(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "release.yml").write_text(yaml.safe_dump(CASES[9].document()))  # dataset latest
    (tmp_path / "README.md").write_text("not yaml: [")
    assert "spec.bundle.dataset.version" in run("validate", str(tmp_path)).stdout
    result = run("validate", "-", stdin=yaml.safe_dump(load_example()))
    assert result.returncode == 0


def test_unreadable_input_exits_two(tmp_path):
    assert run("validate", str(tmp_path / "missing.yaml")).returncode == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("spec: [unclosed")
    result = run("validate", str(broken))
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr


def test_revision_prints_each_release_revision():
    result = run("revision", str(EXAMPLES / "support-bot-adapter-vllm.yaml"))
    assert result.returncode == 0
    name, revision = result.stdout.strip().rsplit(": ", 1)
    assert name.endswith("FineTuneRelease/support-bot")
    assert len(revision) == 10
    # The same bundle with the stages changed has the same revision.
    doc = load_example()
    doc["spec"]["strategy"]["stages"] = [{"name": "all", "weight": 100}]
    again = run("revision", "-", stdin=yaml.safe_dump(doc))
    assert again.stdout.strip().endswith(revision)
