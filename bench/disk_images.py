"""What keeping homes as disk images costs a project's start and stop.

Starts and stops projects on two local runtimes in the same run, interleaved: one with plain
folder homes (the baseline, project_disk=none) and one with disk images (project_disk=image).
For images it measures the first start (the image is made), later starts (mounted as it is),
and a start after the quota grew (checked and resized). Prints medians and the ratios to the
baseline. Needs root, bubblewrap and loop devices.

    .venv/bin/python bench/disk_images.py --rounds 10 --disk-mb 3000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path

from calchub.runtime import LocalRuntime, ProjectSpec, Quota

FIRST_UID = 64500  # above the test suite's range


async def timed(step: Awaitable[None]) -> float:
    began = time.perf_counter()
    await step
    return time.perf_counter() - began


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--disk-mb", type=int, default=3000, help="the projects' disk quota")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cbd", dir="/tmp"))
    os.chmod(base, 0o711)  # noqa: S103 - project uids reach their mount points through it
    plain = LocalRuntime(base / "p1", base / "r1", disk="none")
    images = LocalRuntime(base / "p2", base / "r2", disk="image")
    for rt in (plain, images):
        check = rt.check_available()
        if not check.available:
            raise SystemExit(f"cannot run: {check.reason}")
    if not images.disk_images:
        raise SystemExit("disk images do not work here")
    times: dict[str, list[float]] = {
        "folder: start": [],
        "image: first start (made)": [],
        "image: start": [],
        "image: start after growth": [],
        "folder: stop": [],
        "image: stop": [],
    }
    quota = Quota(disk_mb=args.disk_mb)
    grown = Quota(disk_mb=args.disk_mb + 1000)
    try:
        for n in range(args.rounds):
            uid = FIRST_UID + n
            folder = ProjectSpec(str(uuid.uuid4()), uid, quota)
            image = ProjectSpec(str(uuid.uuid4()), uid + args.rounds, quota)
            times["folder: start"].append(await timed(plain.start(folder)))
            times["folder: stop"].append(await timed(plain.stop(folder.project_id)))
            times["image: first start (made)"].append(await timed(images.start(image)))
            await images.stop(image.project_id)
            times["image: start"].append(await timed(images.start(image)))
            times["image: stop"].append(await timed(images.stop(image.project_id)))
            bigger = ProjectSpec(image.project_id, image.uid, grown)
            times["image: start after growth"].append(await timed(images.start(bigger)))
            await images.stop(image.project_id)
    finally:
        await plain.close()
        await images.close()
        shutil.rmtree(base, ignore_errors=True)
    print(f"{args.rounds} rounds, disk quota {args.disk_mb} MB (growth: +1000 MB)")
    baseline = {
        "start": statistics.median(times["folder: start"]),
        "stop": statistics.median(times["folder: stop"]),
    }
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / baseline["stop" if "stop" in name else "start"]
        print(f"{name:28} median {median * 1000:7.1f} ms   x{ratio:5.2f} of the folder's")


if __name__ == "__main__":
    asyncio.run(main())
