"""Container hardening (CIS Docker Benchmark §5, KICS/Trivy equivalents) for docker Containers."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ._props import (
    ADVISORY,
    BUILT_IMAGE,
    CONTAINER,
    REMOTE_IMAGE,
    dig,
    fully_known,
    items,
    known,
    never_started,
    number,
    number_setting,
    resource_rule,
    string_list,
)

Props = dict[str, Any]
Config = Mapping[str, Any]


def _security_opts(props: Props) -> list[str]:
    return [str(o).replace(":", "=", 1).replace(" ", "").lower() for o in items(props.get("securityOpts"))]


def check_privileged(props: Props, _: Config) -> Iterator[str]:
    if props.get("privileged") is True:
        yield "privileged=True gives the container every host device and capability; remove it."


ROOT_USERS = {"", "root", "0"}


def check_user(props: Props, _: Config) -> Iterator[str]:
    user = props.get("user")
    if not known(user):
        return
    if user is None or str(user).split(":")[0].strip() in ROOT_USERS:
        yield (f"user={user!r} runs as root; set user='<uid>:<gid>' (non-zero uid) "
               "that owns the container's writable paths.")


def check_drop_all(props: Props, _: Config) -> Iterator[str]:
    drops = dig(props, "capabilities", "drops", default=[])
    if fully_known(drops) and "ALL" not in {str(d).upper() for d in items(drops)}:
        yield "capabilities.drops must contain 'ALL'; add back only what the service needs in adds."


def check_dangerous_caps(props: Props, cfg: Config) -> Iterator[str]:
    forbidden = {str(c).upper().removeprefix("CAP_") for c in cfg["forbidden"]}
    added = items(dig(props, "capabilities", "adds", default=[]))
    adds = {str(c).upper().removeprefix("CAP_") for c in added}
    bad = sorted(adds & forbidden)
    if bad:
        yield f"capabilities.adds contains {bad}; remove them or allow-list this container with a reason."


def check_no_new_privileges(props: Props, _: Config) -> Iterator[str]:
    if not fully_known(props.get("securityOpts")):
        return
    opts = _security_opts(props)
    if not any(o in ("no-new-privileges", "no-new-privileges=true") for o in opts):
        yield "security_opts lacks 'no-new-privileges:true'; add it so setuid binaries cannot escalate."


UNCONFINED = ("seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined")


def check_unconfined(props: Props, _: Config) -> Iterator[str]:
    for opt in _security_opts(props):
        if opt in UNCONFINED:
            yield f"security_opts has '{opt}'; remove it to keep the default seccomp/AppArmor profile."


def check_read_only(props: Props, _: Config) -> Iterator[str]:
    if never_started(props):
        return
    if known(props.get("readOnly")) and props.get("readOnly") is not True:
        yield "read_only is not True; make the root filesystem read-only and mount tmpfs/volumes for writes."


NAMESPACES = {"networkMode": "network_mode", "pidMode": "pid_mode", "ipcMode": "ipc_mode",
              "usernsMode": "userns_mode"}


def check_host_namespaces(props: Props, _: Config) -> Iterator[str]:
    for key, arg in NAMESPACES.items():
        if str(props.get(key) or "").lower() == "host":
            yield f"{arg}='host' shares the host's namespace; use a bridge network / private namespace."


def host_paths(props: Props) -> list[str]:
    """Host paths bind-mounted via ``volumes[].hostPath`` or ``mounts[type=bind].source``."""
    paths = [v.get("hostPath") for v in items(props.get("volumes")) if isinstance(v, Mapping)]
    paths += [m.get("source") for m in items(props.get("mounts"))
              if isinstance(m, Mapping) and m.get("type") == "bind"]
    return [p for p in paths if isinstance(p, str) and p]


def _norm(path: str) -> str:
    return "/" + path.strip("/") if path.strip("/") else "/"


def is_docker_socket(path: str) -> bool:
    return _norm(path).endswith("/docker.sock")


def check_docker_socket(props: Props, _: Config) -> Iterator[str]:
    for path in host_paths(props):
        if is_docker_socket(path):
            yield f"mounts the Docker socket {path!r}: that is root on the node; remove the mount."


def check_sensitive_mounts(props: Props, cfg: Config) -> Iterator[str]:
    sensitive = [_norm(str(p)) for p in cfg["sensitive_paths"]]
    for path in host_paths(props):
        path_n = _norm(path)
        if is_docker_socket(path_n):
            continue  # reported by container-no-docker-socket
        hit = next((s for s in sensitive if path_n == s or (s != "/" and path_n.startswith(s + "/"))), None)
        if hit:
            yield f"mounts sensitive host path {path!r} (under {hit!r}); mount a dedicated directory instead."


WILDCARD_IPS = {"", "0.0.0.0", "::", "[::]"}


def check_port_ips(props: Props, _: Config) -> Iterator[str]:
    if props.get("publishAllPorts") is True:
        yield "publish_all_ports=True publishes on 0.0.0.0; list ports with ip set instead."
    for port in items(props.get("ports")):
        ip = port.get("ip") if isinstance(port, Mapping) else None
        if known(ip) and str(ip or "").strip() in WILDCARD_IPS:
            where = number(port.get("external")) or number(port.get("internal")) or 0
            yield (f"port {where:g} is published on {ip or '0.0.0.0 (default)'}; set ip to the node's "
                   "Tailscale address or 127.0.0.1.")


def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """``repo[:tag][@digest]`` -> (repo, tag, digest)."""
    ref, _, digest = ref.partition("@")
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:], digest or None
    return ref, None, digest or None


def _image_ref(props: Props, resource_key: str) -> str | None:
    ref = props.get(resource_key)
    if not isinstance(ref, str) or not ref or ref.startswith("sha256:"):
        return None  # unknown at preview, or an image ID (already content-addressed)
    return ref


def _image_key(props: Props) -> str:
    """Container ``image``, built Image ``imageName``, RemoteImage ``name``."""
    return next((key for key in ("image", "imageName") if key in props), "name")


def check_image_tag(props: Props, _config: Config) -> Iterator[str]:
    ref = _image_ref(props, _image_key(props))
    if ref is None:
        return
    _, tag, digest = split_image(ref)
    if digest is None and (tag is None or tag == "latest"):
        yield f"image {ref!r} is untagged or 'latest'; pin a version tag (e.g. ':v0.11.0') or a digest."


def check_image_digest(props: Props, _: Config) -> Iterator[str]:
    ref = _image_ref(props, _image_key(props))
    if ref is not None and split_image(ref)[2] is None:
        yield f"image {ref!r} has no digest; pin '@sha256:...' so the tag cannot move under you."


def check_memory(props: Props, cfg: Config) -> Iterator[str]:
    memory = props.get("memory")
    if known(memory) and (number(memory) or 0) < cfg["min_memory_mb"]:
        yield f"memory={memory!r}; set a memory limit in MB (>= {cfg['min_memory_mb']:g})."


def check_restart(props: Props, cfg: Config) -> Iterator[str]:
    if never_started(props):
        return
    restart = props.get("restart")
    if known(restart) and str(restart or "no").split(":")[0] not in cfg["allowed"]:
        yield f"restart={restart or 'no'!r}; set restart to one of {list(cfg['allowed'])}."


def check_healthcheck(props: Props, _: Config) -> Iterator[str]:
    if never_started(props) or not fully_known(props.get("healthcheck")):
        return
    tests = [str(t) for t in items(dig(props, "healthcheck", "tests", default=[]))]
    if not tests or tests[0].upper() == "NONE":
        yield "no healthcheck; set healthcheck.tests (e.g. ['CMD', 'curl', '-fsS', 'http://127.0.0.1:PORT/health'])."


def check_log_rotation(props: Props, cfg: Config) -> Iterator[str]:
    driver, opts = props.get("logDriver"), props.get("logOpts")
    if not fully_known([driver, opts]):
        return
    driver = driver or "json-file"
    if driver in cfg["self_rotating_drivers"]:
        return
    if driver != "json-file":
        yield f"log_driver={driver!r} is not rotated here; use 'local' or json-file with max-size/max-file."
    elif not (isinstance(opts, Mapping) and opts.get("max-size") and opts.get("max-file")):
        yield ("json-file logs grow unbounded; set log_opts={'max-size': '10m', 'max-file': '3'} "
               "or log_driver='local'.")


# --- plaintext secrets in env ----------------------------------------------------------
# Python policies never see secret markers (pulumi-policy#241), so the rule is about names
# and shapes: a secret-looking NAME is refused whatever its value (secrets travel as files:
# upload to /run/secrets/<name>, set <NAME>_FILE=/run/secrets/<name>), and well-known key
# formats are refused in any variable. stack.py's container-secrets-not-in-env catches
# secret resources (RandomPassword, TailnetKey) flowing into envs while values are unknown.

SECRET_NAME = r"PASSWORD|PASSWD|SECRET|CREDENTIAL|PRIVATE_?KEY|AUTH_?KEY|(^|_)(API_?KEY|KEYS?|PWD|TOKEN|PAT)(_|$)"
SECRET_VALUES = [
    r"\bsk-[A-Za-z0-9_-]{16,}", r"\btskey-[A-Za-z0-9-]{8,}", r"\bAIza[0-9A-Za-z_-]{30,}",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}", r"\bgithub_pat_[A-Za-z0-9_]{20,}", r"\bhf_[A-Za-z0-9]{30,}",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}", r"\bAKIA[0-9A-Z]{16}\b", r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"://[^/\s:@]+:[^/\s@]+@",
]


def env_pairs(props: Props) -> list[tuple[str, str]]:
    """``envs`` is a list of ``NAME=value`` strings; unknown entries are skipped."""
    return [(str(e).partition("=")[0], str(e).partition("=")[2]) for e in items(props.get("envs"))]


def check_secrets(props: Props, cfg: Config) -> Iterator[str]:
    name_re = re.compile(cfg["secret_name_pattern"], re.IGNORECASE)
    value_res = [re.compile(p) for p in cfg["secret_value_patterns"]]
    file_prefix = cfg["secret_file_prefix"]
    for name, value in env_pairs(props):
        if name in cfg["allowed_names"]:
            continue
        if name.upper().endswith("_FILE"):
            if name_re.search(name[:-5]) and not value.startswith(file_prefix):
                yield f"{name} must point into {file_prefix} (upload the secret there as a file)."
        elif name_re.search(name) and not value.startswith("file:" + file_prefix):
            yield (f"env {name} looks like a secret; upload it to {file_prefix}<name> and set "
                   f"{name}_FILE (or {name}=file:{file_prefix}<name> where the app reads that), "
                   "or add it to allowed_names if it is not secret.")
        if any(r.search(value) for r in value_res):
            yield f"env {name} contains a credential-shaped value; pass it as a file under {file_prefix}."


DANGEROUS_CAPS = ["ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "SYS_BOOT",
                  "SYS_TIME", "DAC_READ_SEARCH", "MAC_ADMIN", "MAC_OVERRIDE", "BPF", "PERFMON", "NET_RAW",
                  "SYSLOG", "LINUX_IMMUTABLE"]
SENSITIVE_PATHS = ["/", "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run", "/var/run",
                   "/var/lib/docker", "/usr", "/lib", "/bin", "/sbin", "/home"]
RESTART_POLICIES = ["unless-stopped", "always", "on-failure"]

C = CONTAINER
POLICIES = [
    resource_rule("container-no-privileged", "Containers must not run privileged (CIS 5.5).",
                  C, check_privileged),
    resource_rule("container-non-root-user", "Containers must run as a non-root user (CIS 4.1).",
                  C, check_user),
    resource_rule("container-drop-all-capabilities", "Containers must drop ALL capabilities (CIS 5.4).",
                  C, check_drop_all),
    resource_rule("container-no-dangerous-capabilities", "Containers must not add dangerous capabilities.",
                  C, check_dangerous_caps,
                  forbidden=string_list("Capabilities refused in capabilities.adds.", DANGEROUS_CAPS)),
    resource_rule("container-no-new-privileges", "Containers must set no-new-privileges (CIS 5.26).",
                  C, check_no_new_privileges),
    resource_rule("container-no-unconfined-profiles", "No seccomp/AppArmor unconfined (CIS 5.2/5.3).",
                  C, check_unconfined),
    resource_rule("container-read-only-rootfs", "Root filesystem should be read-only (CIS 5.13).",
                  C, check_read_only, ADVISORY),
    resource_rule("container-no-host-namespaces", "No host network/pid/ipc/userns (CIS 5.10/5.16/5.17).",
                  C, check_host_namespaces),
    resource_rule("container-no-docker-socket", "Containers must not mount the Docker socket (CIS 5.32).",
                  C, check_docker_socket),
    resource_rule("container-no-sensitive-host-mounts", "No sensitive host directories mounted (CIS 5.6).",
                  C, check_sensitive_mounts,
                  sensitive_paths=string_list("Host paths that may not be mounted, nor below them.",
                                              SENSITIVE_PATHS)),
    resource_rule("container-ports-bound-to-ip", "Published ports must bind a specific IP (CIS 5.14).",
                  C, check_port_ips),
    resource_rule("image-tag-pinned", "Images must be pinned to a tag other than latest or a digest.",
                  [C, REMOTE_IMAGE, BUILT_IMAGE], check_image_tag),
    resource_rule("image-digest-pinned", "Images should be pinned by digest.",
                  [C, REMOTE_IMAGE], check_image_digest, ADVISORY),
    resource_rule("container-memory-limit", "Containers must have a memory limit (CIS 5.11).",
                  C, check_memory,
                  min_memory_mb=number_setting("Smallest accepted memory limit (MB).", 1)),
    resource_rule("container-restart-policy", "Containers must have a restart policy (CIS 5.15).",
                  C, check_restart,
                  allowed=string_list("Accepted restart policies.", RESTART_POLICIES)),
    resource_rule("container-healthcheck", "Every container must have a healthcheck (CIS 5.27).",
                  C, check_healthcheck),
    resource_rule("container-log-rotation", "Container logs must be rotated.", C, check_log_rotation,
                  self_rotating_drivers=string_list("Drivers that rotate or ship logs themselves.",
                                                    ["local", "journald", "none"])),
    resource_rule("container-no-plaintext-secrets", "No secrets in container environment variables.",
                  C, check_secrets,
                  secret_name_pattern={"type": "string", "default": SECRET_NAME,
                                       "description": "Regex (case-insensitive) of secret-looking names."},
                  secret_value_patterns=string_list("Regexes of credential-shaped values.", SECRET_VALUES),
                  secret_file_prefix={"type": "string", "default": "/run/secrets/",
                                      "description": "Where *_FILE variables must point."},
                  allowed_names=string_list("Env names that match the pattern but are not secret.", [])),
]
