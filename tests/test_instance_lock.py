"""The instance lock: one holder at a time, free again once released."""

from __future__ import annotations

import os
from pathlib import Path

from durable_ext.host.instance_lock import InstanceLock, instance_lock_path


def test_one_holder_at_a_time_and_the_next_one_after_release(tmp_path: Path) -> None:
    path = tmp_path / "engine.lock"
    first, second = InstanceLock(path), InstanceLock(path)
    assert first.acquire() and first.acquire()  # re-entrant for its holder
    assert not second.acquire() and not second.held
    assert second.holder() == os.getpid()
    first.release()
    assert second.acquire() and second.held
    second.release()


def test_the_lock_is_per_app_and_task_hub(tmp_path: Path) -> None:
    one = instance_lock_path(tmp_path / "app", "HubA")
    assert one == instance_lock_path(tmp_path / "app", "huba")  # hub names are case-insensitive
    assert one != instance_lock_path(tmp_path / "app", "HubB")
    assert one != instance_lock_path(tmp_path / "other", "HubA")
