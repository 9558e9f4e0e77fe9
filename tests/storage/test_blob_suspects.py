"""`BlobSuspects`: the per-instance bookkeeping of blobs that may have become garbage."""

from __future__ import annotations

from durable_ext.storage.large_payloads import BlobSuspects


def test_suspects_are_due_only_after_a_commit_and_bounded() -> None:
    suspects = BlobSuspects(limit=2)
    suspects.committed("a", "x")
    assert suspects.take_due("a") is None, "no suspects, nothing to check"
    suspects.add("a", ["a1"])
    assert suspects.take_due("a") is None, "not before a checkpoint commits"
    suspects.committed("a", "x")
    assert suspects.take_due("a") == ("x", {"a1"})
    assert suspects.take_due("a") is None
    for instance_id in "abc":
        suspects.add(instance_id, [f"{instance_id}1"])
        suspects.committed(instance_id, "x")
    assert suspects.take_due("a") is None, "the oldest instance is forgotten past the limit"
    assert suspects.take_due("c") == ("x", {"c1"})
