"""A Docker engine of the tests' own: its own dockerd, socket, data root, exec root and pidfile in a
temporary folder, and an image made with `docker import` from a root filesystem holding a static
busybox (no registry, no pull). Stopped and its folder removed afterwards.

When the engine cannot run here: outside CI (`CI` unset) the tests skip with the reason; in CI a
missing package or a daemon that fails for another reason is a failure (scripts/ci-deps.sh installs
`docker.io` and `busybox-static`), except a kernel or sandbox limitation (no namespaces, cgroups or
mounts for an unprivileged container runner), which skips with the daemon's exact error.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import docker
import docker.errors
import pytest

BUSYBOX = Path("/bin/busybox")
IMAGE = "swarm-engine-test/busybox:1"
APPLETS = ("sh", "cat", "stat", "id", "ls", "true", "sleep")
START_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 20.0

# Words in a daemon or runtime error that mean "this kernel/sandbox cannot run containers".
SANDBOX_LIMITS = ("operation not permitted", "permission denied", "cgroup", "namespace", "unshare",
                  "mount", "not supported", "seccomp", "apparmor", "/proc/", "/sys/")


@dataclass
class Engine:
    client: docker.DockerClient
    version: str
    api_version: str
    image: str
    root: Path
    """Scratch space for host paths the plans bind-mount (never the real ones)."""


def unavailable(reason: str, *, sandbox: bool) -> NoReturn:
    """Skip, or fail in CI unless the cause is a kernel/sandbox limitation."""
    reason = f"real Docker engine unavailable: {reason}"
    if sandbox or not os.environ.get("CI"):
        pytest.skip(reason)
    pytest.fail(f"{reason} (CI is set, so this fails; scripts/ci-deps.sh installs docker.io busybox-static)")


def is_sandbox_limit(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in SANDBOX_LIMITS)


def _daemon_error(log: Path) -> str:
    """The daemon's fatal line (`failed to start daemon: ...`), else the log's last lines."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    fatal = [line for line in lines if "level=fatal" in line or "failed to start daemon" in line]
    return (fatal[-1] if fatal else " | ".join(lines[-5:])) or "dockerd exited without a message"


def _is_static(binary: Path) -> bool:
    head = binary.read_bytes()[:8192]
    return head.startswith(b"\x7fELF") and b"ld-linux" not in head and b"ld-musl" not in head


def rootfs_tar() -> bytes:
    """/bin/busybox plus applet links, and the directories a container root needs (0755)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("etc", 0o755), ("run", 0o755), ("tmp", 0o1777),
                           ("proc", 0o755), ("sys", 0o755), ("dev", 0o755)):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, mode
            tar.addfile(entry)
        data = BUSYBOX.read_bytes()
        entry = tarfile.TarInfo("bin/busybox")
        entry.size, entry.mode = len(data), 0o755
        tar.addfile(entry, io.BytesIO(data))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def _unmount_under(root: Path) -> None:
    """Lazily unmount anything a crashed daemon left mounted below `root`."""
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    targets = [line.split()[4] for line in mounts]
    for target in sorted((t for t in targets if t.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def _stop_daemon(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def _stop_containerd(pidfile: Path, root: Path) -> None:
    """dockerd runs its own containerd and stops it on exit; if one is left, stop it by the pid it
    recorded, and only if that process really is ours (its command line names our folder)."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return
    if str(root) not in cmdline:
        return
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@contextmanager
def running_engine() -> Iterator[Engine]:
    dockerd = shutil.which("dockerd") or (
        "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None)
    if dockerd is None:
        unavailable("no dockerd (Debian package docker.io)", sandbox=False)
    if not BUSYBOX.exists() or not _is_static(BUSYBOX):
        unavailable(f"{BUSYBOX} missing or not static (Debian package busybox-static)", sandbox=False)
    if os.geteuid() != 0:
        unavailable("dockerd needs root (rootful daemon with its own data root)", sandbox=False)

    root = Path(tempfile.mkdtemp(prefix="swarm-engine-", dir="/tmp"))
    log = root / "dockerd.log"
    (root / "daemon.json").write_text(json.dumps({}))
    socket = root / "docker.sock"
    args = [dockerd, "--host", f"unix://{socket}", "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
            "--config-file", str(root / "daemon.json"), "--storage-driver", "vfs",
            "--iptables=false", "--ip6tables=false", "--bridge=none"]
    client: docker.DockerClient | None = None
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = _wait_until_up(process, socket, log)
        version = client.version()
        client.api.import_image_from_data(rootfs_tar(), repository=IMAGE.split(":")[0], tag=IMAGE.split(":")[1])
        (root / "hostpaths").mkdir()
        _probe(client)
        yield Engine(client, str(version["Version"]), str(version["ApiVersion"]), IMAGE, root / "hostpaths")
    finally:
        if client is not None:
            with suppress(docker.errors.DockerException):
                for container in client.containers.list(all=True):
                    container.remove(force=True, v=True)
            client.close()
        _stop_daemon(process)
        _stop_containerd(root / "exec" / "containerd" / "containerd.pid", root)
        _unmount_under(root)
        shutil.rmtree(root)


def _wait_until_up(process: subprocess.Popen[bytes], socket: Path, log: Path) -> docker.DockerClient:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = _daemon_error(log)
            unavailable(f"dockerd exited ({process.returncode}): {error}", sandbox=is_sandbox_limit(error))
        if socket.exists():
            client = docker.DockerClient(base_url=f"unix://{socket}", timeout=60)
            try:
                client.ping()
                return client
            except docker.errors.DockerException:
                client.close()
        time.sleep(0.2)
    unavailable(f"dockerd did not answer within {START_TIMEOUT_S:.0f}s: {_daemon_error(log)}", sandbox=False)


def _probe(client: docker.DockerClient) -> None:
    """Run one container: a daemon that starts but whose runtime cannot create one is unusable."""
    try:
        client.containers.run(IMAGE, ["/bin/true"], network_mode="none", remove=True)
    except docker.errors.APIError as error:
        message = str(error.explanation)
        unavailable(f"the engine cannot run a container: {message}", sandbox=is_sandbox_limit(message))
