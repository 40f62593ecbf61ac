"""Property tests: whatever a user feeds the validator, it answers with problems, never a crash."""

from __future__ import annotations

from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api_strategies import json_values, mutated_examples, release_documents

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_outcome(document):
    release, problems = validate_release(document)  # must not raise
    if release is None:
        assert problems, "a rejection always says why"
        for problem in problems:
            assert isinstance(problem.path, str)
            assert problem.message
    else:
        assert problems == []
        assert len(revision_of(release.spec.bundle)) == 10


@SETTINGS
@given(mutated_examples())
def test_mutated_examples_only_ever_give_problems(document):
    _check_outcome(document)


@SETTINGS
@given(release_documents())
def test_generated_releases_only_ever_give_problems(document):
    _check_outcome(document)


@SETTINGS
@given(
    json_values
    | st.dictionaries(st.sampled_from(["apiVersion", "kind", "metadata", "spec"]), json_values)
)
def test_arbitrary_values_only_ever_give_problems(document):
    _check_outcome(document)
