"""A folder seen read-only, as on a read-only mount: a command runs in a private mount namespace (`unshare`) where
``mountpoint`` shows ``source`` through a read-only bind mount. The mount goes when the command ends; nothing
changes for other processes. Root uses a plain mount namespace; another user a user namespace too."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"'


def read_only_command(source: Path, mountpoint: Path, command: list[str]) -> list[str]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    flags = ["--mount"] if os.geteuid() == 0 else ["--mount", "--map-root-user"]
    return ["unshare", *flags, "sh", "-c", SCRIPT, "sh", str(source), str(mountpoint), *command]


def why_unavailable(scratch: Path) -> str | None:
    """Why read-only mounts cannot be made here (no `unshare`, or namespaces not permitted), or None."""
    if shutil.which("unshare") is None:
        return "`unshare` (util-linux) is not installed"
    source, mountpoint = scratch / "probe-source", scratch / "probe-mount"
    source.mkdir(parents=True, exist_ok=True)
    probe = read_only_command(source, mountpoint, ["sh", "-c", f'! touch "{mountpoint}/x" 2>/dev/null'])
    done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return f"this machine does not allow a private read-only bind mount: {done.stderr.strip()[:200]}"
    return None
