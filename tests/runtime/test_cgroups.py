"""Cgroup detection and limit files, on a fake hierarchy (this machine has real v1
controllers, exercised by the lifecycle and limits tests; the v2 path is checked here)."""

from __future__ import annotations

from pathlib import Path

from calchub.runtime.cgroups import CgroupManager, Limits

LIMITS = Limits(memory_bytes=512 * 1024 * 1024, cpu_cores=1.5, pids=99)


def fake(tmp_path: Path, lines: list[str], v2_controllers: str = "") -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for line in lines:
        point = Path(line.split()[1])
        point.mkdir(parents=True, exist_ok=True)
        if line.startswith("cgroup2"):
            (point / "cgroup.controllers").write_text(v2_controllers)
    mounts = tmp_path / "mounts"
    mounts.write_text("\n".join(["proc /proc proc rw 0 0", *lines]) + "\n")
    return root, mounts


def test_v1_controllers(tmp_path: Path) -> None:
    root, mounts = fake(
        tmp_path,
        [
            f"cgroup {tmp_path}/cgroup/memory cgroup rw,nosuid,memory 0 0",
            f"cgroup {tmp_path}/cgroup/pids cgroup rw,pids 0 0",
            f"cgroup {tmp_path}/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0",
        ],
    )
    manager = CgroupManager(root, mounts=mounts)
    assert manager.controllers == {"memory", "pids", "cpu"}
    joins = manager.create("p1", LIMITS)
    assert sorted(p.parent.parent.parent.name for p in joins) == ["cpu,cpuacct", "memory", "pids"]
    assert {p.name for p in joins} == {"tasks"}
    group = root / "memory" / "calchub" / "p1"
    assert (group / "memory.limit_in_bytes").read_text() == str(512 * 1024 * 1024)
    assert (root / "pids" / "calchub" / "p1" / "pids.max").read_text() == "99"
    cpu = root / "cpu,cpuacct" / "calchub" / "p1"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "150000"
    (group / "memory.usage_in_bytes").write_text("12345\n")
    assert manager.memory_usage("p1") == 12345


def test_v2_fills_in_what_v1_lacks(tmp_path: Path) -> None:
    root, mounts = fake(
        tmp_path,
        [
            f"cgroup {tmp_path}/cgroup/memory cgroup rw,memory 0 0",
            f"cgroup2 {tmp_path}/cgroup/unified cgroup2 rw,nsdelegate 0 0",
        ],
        v2_controllers="cpu io memory pids\n",
    )
    manager = CgroupManager(root, mounts=mounts)
    assert manager.controllers == {"memory", "pids", "cpu"}
    manager.create("p2", LIMITS)
    unified = root / "unified"
    assert (unified / "cgroup.subtree_control").read_text() == "+cpu +pids"
    assert (unified / "calchub" / "cgroup.subtree_control").read_text() == "+cpu +pids"
    group = unified / "calchub" / "p2"
    assert (group / "pids.max").read_text() == "99"
    assert (group / "cpu.max").read_text() == "150000 100000"
    assert not (group / "memory.max").exists()  # memory came from v1


def test_v2_only(tmp_path: Path) -> None:
    root, mounts = fake(
        tmp_path,
        [f"cgroup2 {tmp_path}/cgroup cgroup2 rw 0 0"],
        v2_controllers="cpu memory pids\n",
    )
    manager = CgroupManager(root, mounts=mounts)
    assert manager.create("p3", LIMITS) == [root / "calchub" / "p3" / "cgroup.procs"]
    group = root / "calchub" / "p3"
    assert (group / "memory.max").read_text() == str(512 * 1024 * 1024)
    assert (group / "memory.swap.max").read_text() == "0"
    (group / "memory.current").write_text("777\n")
    assert manager.memory_usage("p3") == 777
    assert manager.exists("p3")


def test_nothing_usable(tmp_path: Path) -> None:
    root, mounts = fake(
        tmp_path, [f"cgroup2 {tmp_path}/cgroup/unified cgroup2 rw 0 0"], v2_controllers="hugetlb\n"
    )
    manager = CgroupManager(root, mounts=mounts)
    assert manager.controllers == frozenset()
    assert manager.create("p4", LIMITS) == []
    assert manager.memory_usage("p4") is None
