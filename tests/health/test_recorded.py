"""Argo CD's and kstatus' health of FineTuneReleases recorded from e2e runs, read by the same
code they run (gopher-lua with manifests/argocd/health.lua; sigs.k8s.io/cli-utils' kstatus)."""

from __future__ import annotations

import yaml

from tests.health import EXPECTED, RECORDED, REPO, healths


def test_every_recorded_state_reads_as_expected_by_argo_cd_and_kstatus():
    files = sorted(RECORDED.glob("*.json"))
    assert {f.stem for f in files} == set(EXPECTED), "a state without a recording, or the reverse"
    found = healths(files)
    for state, (argo, kstatus) in EXPECTED.items():
        verdict = found[state]
        assert (verdict["argo"]["status"], verdict["kstatus"]["status"]) == (argo, kstatus), (
            state,
            verdict,
        )
        assert verdict["argo"]["message"], f"{state}: Argo CD shows a message"


def test_the_argo_cd_snippet_installs_exactly_the_tested_check():
    patch = yaml.safe_load((REPO / "manifests" / "argocd" / "argocd-cm-patch.yaml").read_text())
    lua = patch["data"]["resource.customizations.health.finetune.dev_FineTuneRelease"]
    assert lua == (REPO / "manifests" / "argocd" / "health.lua").read_text()
