"""The informer cache: releases and the objects they own, as the watches last saw them. Seeded by
one list per kind when the replica starts (and replaced by a new list after it lost the lease),
fed by kopf's
watch events (handlers.py) and written through with the apiserver's answer to each of our own
writes. The newest resourceVersion wins, so a lagging watch event never replaces a newer copy
and a reconcile never reads the apiserver."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from ftrelease.api.ownership import RELEASE_LABEL, ReleaseRef
from ftrelease.api.resource import KIND

Key = tuple[str, str]  # (namespace, release name)
TOMBSTONES = 10_000


def _version(obj: dict[str, Any]) -> int:
    """resourceVersion is opaque in the API, but an etcd revision in practice: the larger one
    is newer. Unparseable versions compare as oldest, so a watch event always replaces them."""
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _owner_key(body: dict[str, Any]) -> Key | None:
    """The release an object belongs to, by its label (None: not a release's)."""
    meta = body["metadata"]
    release = (meta.get("labels") or {}).get(RELEASE_LABEL)
    return (meta["namespace"], release) if release else None


class Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._releases: dict[Key, dict[str, Any]] = {}
        # kind -> release key -> object name -> object
        self._owned: defaultdict[str, defaultdict[Key, dict[str, dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        # Uids of deleted objects (the newest ones), so a late list never brings one back.
        self._deleted: dict[str, None] = {}

    # ---- feeding ------------------------------------------------------------------------------

    def put_release(self, body: dict[str, Any], *, only_newer: bool = False) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        with self._lock:
            if body["metadata"].get("uid") in self._deleted:
                return
            known = self._releases.get(key)
            if only_newer and known is not None and _version(known) >= _version(body):
                return
            self._releases[key] = body

    def delete_release(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            self._tombstone(body)
            known = self._releases.get(key)
            if known is not None and known["metadata"].get("uid") == meta.get("uid"):
                del self._releases[key]

    def put_owned(self, kind: str, body: dict[str, Any], *, only_newer: bool = False) -> Key | None:
        """Stores an object a release owns; returns that release's key (None: not ours)."""
        meta = body["metadata"]
        key = _owner_key(body)
        if key is None:
            return None
        with self._lock:
            if meta.get("uid") in self._deleted:
                return key
            objects = self._owned[kind][key]
            known = objects.get(meta["name"])
            if not (only_newer and known is not None and _version(known) >= _version(body)):
                objects[meta["name"]] = body
        return key

    def delete_owned(self, kind: str, body: dict[str, Any]) -> Key | None:
        key = _owner_key(body)
        if key is None:
            return None
        meta = body["metadata"]
        with self._lock:
            self._tombstone(body)
            objects = self._owned[kind][key]
            known = objects.get(meta["name"])
            if known is not None and known["metadata"].get("uid") == meta.get("uid"):
                del objects[meta["name"]]  # not a newer object of the same name
        return key

    def replace(self, kind: str, items: list[dict[str, Any]], listed_at: int) -> None:
        """A fresh list of every `kind` (FineTuneRelease or an owned kind), taken at resource
        version `listed_at`: stores its objects (the newest copy wins) and forgets cached ones
        from before the list that it no longer shows, deleted while no watch saw it (after a
        watch gap kopf lists again without DELETED events)."""
        listed = {item["metadata"].get("uid") for item in items}
        with self._lock:
            groups = [self._releases] if kind == KIND else list(self._owned[kind].values())
            for objects in groups:
                for name, obj in list(objects.items()):
                    gone = obj["metadata"].get("uid") not in listed
                    if gone and _version(obj) <= listed_at:
                        del objects[name]
        for item in items:
            if kind == KIND:
                self.put_release(item, only_newer=True)
            else:
                self.put_owned(kind, item, only_newer=True)

    def _tombstone(self, body: dict[str, Any]) -> None:
        self._deleted[body["metadata"].get("uid", "")] = None
        if len(self._deleted) > TOMBSTONES:
            del self._deleted[next(iter(self._deleted))]

    # ---- reading ------------------------------------------------------------------------------

    def release(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self._releases.get(key)

    def release_keys(self) -> list[Key]:
        with self._lock:
            return list(self._releases)

    def owned(self, kind: str, ref: ReleaseRef) -> dict[str, dict[str, Any]]:
        """The objects of `kind` that this release (this uid, not an older namesake) owns."""
        with self._lock:
            objects = dict(self._owned[kind].get((ref.namespace, ref.name)) or {})
        return {
            name: obj
            for name, obj in objects.items()
            if any(o.get("uid") == ref.uid for o in obj["metadata"].get("ownerReferences") or [])
        }

    def sizes(self) -> dict[str, int]:
        with self._lock:
            sizes = {"FineTuneRelease": len(self._releases)}
            for kind, by_release in self._owned.items():
                sizes[kind] = sum(len(objects) for objects in by_release.values())
        return sizes
