"""The operator's watch cache: newest object wins, deleted objects stay deleted, and a release
sees only what it (this uid, not an older namesake) owns."""

from __future__ import annotations

from ftrelease.api.ownership import RELEASE_LABEL, ReleaseRef
from ftrelease.operator.cache import Cache

REF = ReleaseRef("bot", "ml", "uid-now")


def deployment(name: str, version: int, owner: str = "uid-now", uid: str | None = None) -> dict:
    return {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "uid": uid or f"{name}-uid",
            "resourceVersion": str(version),
            "labels": {RELEASE_LABEL: "bot"},
            "ownerReferences": [{"uid": owner}],
        },
        "spec": {"replicas": version},
    }


def test_a_late_list_never_replaces_a_newer_watch_event():
    cache = Cache()
    assert cache.put_owned("Deployment", deployment("bot-a", 7)) == ("ml", "bot")
    cache.put_owned("Deployment", deployment("bot-a", 5), only_newer=True)  # the seeding list
    assert cache.owned("Deployment", REF)["bot-a"]["spec"]["replicas"] == 7
    cache.put_owned("Deployment", deployment("bot-a", 9), only_newer=True)
    assert cache.owned("Deployment", REF)["bot-a"]["spec"]["replicas"] == 9


def test_a_deleted_object_is_not_brought_back_by_a_late_list():
    cache = Cache()
    cache.put_owned("Deployment", deployment("bot-a", 7))
    cache.delete_owned("Deployment", deployment("bot-a", 8))
    cache.put_owned("Deployment", deployment("bot-a", 7), only_newer=True)
    assert cache.owned("Deployment", REF) == {}


def test_objects_of_an_older_release_of_the_same_name_are_not_its_own():
    cache = Cache()
    cache.put_owned("Deployment", deployment("bot-old", 3, owner="uid-before", uid="x"))
    cache.put_owned("Deployment", deployment("bot-new", 4))
    assert set(cache.owned("Deployment", REF)) == {"bot-new"}


def test_objects_without_the_release_label_are_not_cached():
    cache = Cache()
    unlabelled = deployment("other", 1)
    unlabelled["metadata"]["labels"] = {}
    assert cache.put_owned("Deployment", unlabelled) is None
    assert cache.sizes() == {"FineTuneRelease": 0}


def test_a_lagging_watch_event_keeps_the_newer_write_through_copy_and_a_late_delete_its_successor():
    cache = Cache()
    cache.put_owned("Deployment", deployment("bot-a", 9), only_newer=True)  # our write's answer
    cache.put_owned("Deployment", deployment("bot-a", 8), only_newer=True)  # the watch, behind
    assert cache.owned("Deployment", REF)["bot-a"]["spec"]["replicas"] == 9
    cache.put_owned("Deployment", deployment("bot-b", 3, uid="new-uid"))
    cache.delete_owned("Deployment", deployment("bot-b", 2, uid="old-uid"))  # its predecessor's
    assert "bot-b" in cache.owned("Deployment", REF)


def test_a_new_list_forgets_what_was_deleted_unseen_but_not_what_came_after_it():
    cache = Cache()
    cache.put_owned("Deployment", deployment("bot-a", 5))  # deleted during a watch gap
    cache.put_owned("Deployment", deployment("bot-b", 6))
    cache.put_owned("Deployment", deployment("bot-c", 12))  # created after the list, by a watch
    cache.replace("Deployment", [deployment("bot-b", 6)], listed_at=10)
    assert set(cache.owned("Deployment", REF)) == {"bot-b", "bot-c"}
