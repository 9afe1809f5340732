"""Checks of the deployment files: deploy/docker/Dockerfile with the repository's .dockerignore, and
the Kubernetes manifests of deploy/kubernetes/ (deploy/kubernetes/README.md, "Checking the files").

No Docker engine runs where the tests run, so the image is not built; the Dockerfile is read
instead: its two stages, the -dev packages against the system libraries the manifests (Package.swift
and its dependencies') name, the runtime packages against the shared libraries a built `veil` links
(ldd, and dpkg -S for each library's Debian package, both ways: nothing missing, nothing unused),
the resource bundles beside the binary, the command's flags against `veil serve --help`, the ports
against serve.json.

The manifests are validated by kubernetes-validate in strict mode (an unknown field fails) against
the schemas of Kubernetes 1.30, and a Deployment with a misspelt field or a wrong type must fail. The
ConfigMap's serve.json is checked key by key against the CodingKeys of the Swift parser, then given
to a copy of `veil serve` (it has no dry-run option) with its paths moved to a temporary folder
holding credentials from `veil ca`: pointed at a closed port for PostgreSQL it must get past every
check of the file and fail connecting; with a store — the server VEIL_TEST_POSTGRES names
(Scripts/postgres-test-cluster.sh), else a SQLite file in the postgres section's place — it must
start, answer the probes' GET /healthz and /readyz, and end with status 0 on SIGTERM. With
VEIL_TEST_POSTGRES two copies run as the Deployment's tier on one database: the second waits as a
standby (/healthz 200, /readyz 503) and takes over, under epoch 2, when the leader is SIGTERMed —
sooner than the lease could have run out. The Deployment's shape is checked against what the tier
needs (three replicas, readiness on /readyz, liveness on /healthz, a rollout that replaces the
leader — a model of the Deployment controller shows that a gentler one would not), and every path
serve.json names must be mounted from a Secret or the ConfigMap, or be in the image. The README's
credential commands are run.

Needs a built `veil` (VEIL_BINARY, else the newer of .build/release/veil and .build/debug/veil,
copied to a temporary folder first: the build folder may be rewritten meanwhile), ldd and dpkg,
kubernetes-validate and PyYAML (Specs/reference/requirements.txt), and psql with
VEIL_TEST_POSTGRES; skipped when one is missing, except where VEIL_REQUIRE_TOOLS=1. kubectl, where
present, also renders the kustomization and runs the README's `kubectl create secret` lines
client-side (--dry-run=client); it is not in Debian's packages, so .ci/run does not install it and
its checks are skipped without it in any case.

    VEIL_REQUIRE_TOOLS=1 python3 -m unittest python.tests.test_deployment -v
"""

import glob
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from browser_support import ROOT, Process, run, skip_or_fail  # noqa: E402
from webdriver import free_port  # noqa: E402

try:
    import yaml
except ImportError:  # pragma: no cover - kubernetes-validate brings it (.ci/run installs both)
    yaml = None

DOCKERFILE = os.path.join(ROOT, "deploy", "docker", "Dockerfile")
DOCKERIGNORE = os.path.join(ROOT, ".dockerignore")
KUBERNETES = os.path.join(ROOT, "deploy", "kubernetes")
KUSTOMIZATION = "kustomization.yaml"
# The Secrets' shape, with placeholders; kustomization.yaml leaves it out.
SECRETS_EXAMPLE = "secrets.example.yaml"
README = os.path.join(KUBERNETES, "README.md")
CONFIG_SOURCES = os.path.join(ROOT, "Sources", "VeilService")
KUBERNETES_VERSION = "1.30"
BUILDER_IMAGE = "swift:6.3-bookworm"
RUNTIME_IMAGE = "debian:bookworm-slim"
# Installed in the runtime stage though `veil` links nothing of it: the system's trust store, read
# by NIOSSL for TLS to others than the federation (https webhooks, a managed PostgreSQL).
RUNTIME_DATA_PACKAGES = {"ca-certificates": "the system's trust store"}
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*")

# No proxy: everything here is on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# --- tools --------------------------------------------------------------------------------------

_veil = {}


def veil_binary():
    """A copy of the veil binary in a temporary folder, and the path it was copied from."""
    if "copy" not in _veil:
        source = os.environ.get("VEIL_BINARY")
        if not source:
            built = [os.path.join(ROOT, ".build", c, "veil") for c in ("release", "debug")]
            built = [p for p in built if os.path.isfile(p)]
            source = max(built, key=os.path.getmtime) if built else built
        if not source or not (os.path.isfile(source) and os.access(source, os.X_OK)):
            skip_or_fail("no veil binary in .build/release or .build/debug (build it, or set VEIL_BINARY)")
        folder = tempfile.mkdtemp(prefix="veil-deployment-bin-")
        copy = os.path.join(folder, "veil")
        # A copy taken while the linker writes the file would be torn: only one of a file that was
        # not changed during the copy nor in the seconds before it.
        for _ in range(20):
            before = os.stat(source)
            shutil.copy2(source, copy)
            after = os.stat(source)
            if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns) \
                    and time.time() - after.st_mtime > 3:
                break
            time.sleep(3)
        else:
            raise AssertionError("%s kept changing while it was copied" % source)
        _veil.update(copy=copy, source=os.path.abspath(source), folder=folder)
        run(copy, "--version")
    return _veil["copy"], _veil["source"]


def tearDownModule():
    if "folder" in _veil:
        shutil.rmtree(_veil["folder"], ignore_errors=True)


def require_yaml():
    if yaml is None:
        skip_or_fail("PyYAML is not installed (pip install -r Specs/reference/requirements.txt)")


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        skip_or_fail("%s is not installed" % name)
    return path


def kubernetes_validate(*arguments):
    """kubernetes-validate's exit status and output, strict, against KUBERNETES_VERSION."""
    if importlib.util.find_spec("kubernetes_validate") is None:
        skip_or_fail("kubernetes-validate is not installed (pip install -r Specs/reference/requirements.txt)")
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--kubernetes-version", KUBERNETES_VERSION]
        + list(arguments), capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def kubectl_or_skip():
    path = shutil.which("kubectl")
    if path is None:
        # Never a failure: no Debian package brings kubectl, so .ci/run cannot install it.
        raise unittest.SkipTest("kubectl is not installed (not in Debian's packages; not required)")
    return path


def run_in(arguments, cwd=None, env=None, timeout=120):
    """browser_support.run, with a folder and an environment."""
    result = subprocess.run(list(arguments), capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError("%s exited with %d:\n%s%s" % (" ".join(arguments), result.returncode, result.stdout,
                                                           result.stderr))
    return result


def http_get(url):
    try:
        with OPENER.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# --- the Dockerfile -------------------------------------------------------------------------------


class Stage:
    def __init__(self, image, name):
        self.image = image
        self.name = name
        self.instructions = []  # (KEYWORD, arguments)

    def all(self, keyword):
        return [arguments for k, arguments in self.instructions if k == keyword]

    def one(self, keyword):
        found = self.all(keyword)
        assert len(found) == 1, "%s: %d %s instructions" % (self.image, len(found), keyword)
        return found[0]

    def apt_installs(self):
        """The packages `apt-get install` names in the stage's RUN instructions."""
        packages = set()
        for command in self.all("RUN"):
            for part in re.split(r"&&|;", command):
                words = part.split()
                if "apt-get" in words and "install" in words:
                    packages.update(w for w in words[words.index("install") + 1:] if not w.startswith("-"))
        return packages

    def copies(self):
        """(options, sources, destination) of each COPY."""
        result = []
        for arguments in self.all("COPY"):
            words = shlex.split(arguments)
            options = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            result.append((options, paths[:-1], paths[-1]))
        return result


def dockerfile_stages(text):
    """The stages of a Dockerfile: continuation lines joined, comments and blank lines dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        instructions.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    stages = []
    for instruction in instructions:
        keyword, _, arguments = instruction.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, "%s before the first FROM" % keyword
            stages[-1].instructions.append((keyword, arguments))
    return stages


def package_dependency_names():
    """The repository names of Package.swift's dependencies (their checkouts' folder names)."""
    return re.findall(r'\.package\(\s*url:\s*"https://github\.com/[^/"]+/([^/"]+?)(?:\.git)?"', read(
        os.path.join(ROOT, "Package.swift")))


def apt_providers():
    """{manifest: [package]} of the `.apt([...])` providers of the system libraries that
    Package.swift and its checked-out dependencies' manifests declare."""
    manifests = [os.path.join(ROOT, "Package.swift")] + [
        os.path.join(ROOT, ".build", "checkouts", name, "Package.swift") for name in package_dependency_names()]
    providers = {}
    for manifest in manifests:
        if os.path.isfile(manifest):
            names = []
            for listed in re.findall(r"\.apt\(\s*\[([^\]]*)\]", read(manifest)):
                names += re.findall(r'"([^"]+)"', listed)
            if names:
                providers[os.path.relpath(manifest, ROOT)] = names
    return providers


# --- .dockerignore (Docker's pattern rules: `*` and `?` within a path element, `**` across
# elements, `!` re-includes, the last matching pattern wins, a pattern matching a folder covers
# everything in it) ---------------------------------------------------------------------------------


def dockerignore_patterns(text):
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line[1:] if negated else line).lstrip("/")
        expression, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                expression, i = expression + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                expression, i = expression + ".*", i + 2
            elif pattern[i] == "*":
                expression, i = expression + "[^/]*", i + 1
            elif pattern[i] == "?":
                expression, i = expression + "[^/]", i + 1
            else:
                expression, i = expression + re.escape(pattern[i]), i + 1
        patterns.append((re.compile(expression + r"\Z"), negated, line))
    return patterns


def dockerignored(path, patterns):
    """Whether the build context leaves out `path` (relative to the repository root)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for expression, negated, _ in patterns:
        if any(expression.match(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


# --- the Swift parser of serve.json -----------------------------------------------------------------


def swift_sources():
    return {path: read(path) for path in glob.glob(os.path.join(CONFIG_SOURCES, "**", "*.swift"), recursive=True)}


def swift_struct(name, sources):
    """(source text, offset of its declaration) of `struct NAME`."""
    pattern = re.compile(r"\bstruct\s+%s\b" % re.escape(name))
    for text in sources.values():
        match = pattern.search(text)
        if match:
            return text, match.start()
    raise AssertionError("no struct %s in %s" % (name, os.path.relpath(CONFIG_SOURCES, ROOT)))


def coding_keys(name, sources):
    """The string values of `struct NAME`'s CodingKeys: what the decoder matches a file's keys,
    converted from snake_case, against."""
    text, start = swift_struct(name, sources)
    match = re.compile(r"\benum\s+CodingKeys\b[^{]*\{([^}]*)\}").search(text, start)
    assert match, "struct %s has no CodingKeys" % name
    body = re.sub(r"//[^\n]*", "", match.group(1))
    keys = []
    for case in re.findall(r"\bcase\b(.*?)(?=\bcase\b|\Z)", body, re.S):
        for item in case.split(","):
            item = item.strip()
            if item:
                raw = re.match(r'(\w+)\s*=\s*"([^"]*)"', item)
                keys.append(raw.group(2) if raw else item)
    return keys


def property_types(name, sources):
    """{property: type name} of `struct NAME`'s `public var` declarations before its CodingKeys."""
    text, start = swift_struct(name, sources)
    end = text.index("enum CodingKeys", start)
    return dict(re.findall(r"public var (\w+)\s*:\s*(\w+)", text[start:end]))


def swift_default(name, property_name, sources):
    text, start = swift_struct(name, sources)
    match = re.compile(r"public var %s(?:\s*:\s*[\w?]+)?\s*=\s*(\d+)" % property_name).search(text, start)
    assert match, "no integer default for %s.%s" % (name, property_name)
    return int(match.group(1))


def snake_case(key):
    """The file's spelling of a coding key (Sources/VeilService/Config/ConfigurationDecoding.swift,
    snakeCase(_:))."""
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def from_snake_case(key):
    """JSONDecoder's .convertFromSnakeCase of a snake_case key."""
    first, *rest = key.split("_")
    return first + "".join(word[:1].upper() + word[1:].lower() for word in rest)


# --- the manifests --------------------------------------------------------------------------------


def manifest_files():
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(KUBERNETES, "*.yaml"))
                  if os.path.basename(p) != KUSTOMIZATION)


def documents(name):
    require_yaml()
    with open(os.path.join(KUBERNETES, name), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def resource(kind, name=None):
    found = [(f, d) for f in manifest_files() for d in documents(f)
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, "%d %s %s in deploy/kubernetes" % (len(found), kind, name or "")
    return found[0][1]


def coordinator_deployment():
    return resource("Deployment")


def container(pod_spec, name=None):
    containers = pod_spec["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def serve_json():
    """The ConfigMap's serve.json, parsed, and the ConfigMap."""
    deployment = coordinator_deployment()
    config_map_names = [v["configMap"]["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]
                        if "configMap" in v]
    assert len(config_map_names) == 1, config_map_names
    config_map = resource("ConfigMap", config_map_names[0])
    return json.loads(config_map["data"]["serve.json"]), config_map


def container_port(container_spec, port):
    """The number of a container port given by number or by name."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container_spec.get("ports", []) if p.get("name") == port]
    assert len(named) == 1, "no container port named %r" % port
    return named[0]


def mounted_source(pod_spec, container_spec, path):
    """What provides the file `path` in the container: ("secret" | "configMap", name, key), or None
    when no volume is mounted there."""
    for mount in container_spec.get("volumeMounts", []):
        target = mount["mountPath"].rstrip("/")
        if "subPath" in mount:
            if path != target:
                continue
            relative = mount["subPath"]
        elif path.startswith(target + "/"):
            relative = path[len(target) + 1:]
        else:
            continue
        volume = next(v for v in pod_spec["volumes"] if v["name"] == mount["name"])
        for kind, name_key in (("secret", "secretName"), ("configMap", "name")):
            if kind in volume:
                source = volume[kind]
                items = source.get("items")
                if items is None:
                    key = relative
                else:
                    keys = [item["key"] for item in items if item["path"] == relative]
                    key = keys[0] if keys else None
                return kind, source[name_key], key, mount
        return "other", mount["name"], relative, mount
    return None


def secret_keys():
    """{name: set of keys} of the Secrets of secrets.example.yaml."""
    result = {}
    for document in documents(SECRETS_EXAMPLE):
        assert document["kind"] == "Secret"
        result[document["metadata"]["name"]] = set(document.get("stringData", {})) | set(document.get("data", {}))
    return result


def strings(value, path=()):
    """(path, string) of every string in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, path + (str(index),))
    elif isinstance(value, str):
        yield path, value


def image_copy_into(stages, path):
    """The repository path whose copy into the runtime stage holds `path`, or None."""
    builder, runtime = stages[0], stages[-1]
    workdir = builder.one("WORKDIR").rstrip("/")
    for options, sources, destination in runtime.copies():
        destination = destination.rstrip("/")
        if len(sources) == 1 and (path == destination or path.startswith(destination + "/")):
            source = sources[0].rstrip("/")
            if "--from=" + builder.name in options and source.startswith(workdir + "/"):
                source = source[len(workdir) + 1:]
            elif any(o.startswith("--from=") for o in options):
                continue
            return os.path.join(ROOT, source, path[len(destination) + 1:]) if path != destination else \
                os.path.join(ROOT, source)
    return None


def readme_command_block():
    """The README's shell block of credential commands: the one that runs `veil ca request`."""
    for block in re.findall(r"```sh\n(.*?)```", read(README), re.S):
        if "veil ca request" in block:
            commands, current = [], ""
            for line in block.splitlines():
                line = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
                if line.rstrip().endswith("\\"):
                    current += line.rstrip()[:-1] + " "
                    continue
                current += line
                if current.strip():
                    commands.append(" ".join(current.split()))
                current = ""
            return commands
    raise AssertionError("README.md has no ```sh block with `veil ca request`")


# --- serve.json run here ---------------------------------------------------------------------------


def local_path(folder, path):
    """Where the container's absolute `path` is kept in `folder`."""
    return os.path.join(folder, "root", path.lstrip("/"))


def write_config(folder, config, path="/etc/veil/serve.json"):
    written = local_path(folder, path)
    os.makedirs(os.path.dirname(written), exist_ok=True)
    with open(written, "w") as f:
        json.dump(config, f)
    return written


def moved_config(config, folder):
    """serve.json as a process here can run it: /etc/veil/… in `folder`, holding credentials from
    `veil ca`; the image's participant page as web/participant; loopback, free ports."""
    binary, _ = veil_binary()
    made = os.path.join(folder, "made")
    run(binary, "ca", "init", "--dir", os.path.join(made, "ca"))
    run(binary, "ca", "request", "--id", "coordinator", "--role", "coordinator", "--host", "veil.veil.svc",
        "--out", os.path.join(made, "coordinator"))
    run(binary, "ca", "sign", "--dir", os.path.join(made, "ca"), "--request",
        os.path.join(made, "coordinator", "coordinator.csr.pem"), "--role", "coordinator",
        "--out", os.path.join(made, "coordinator", "coordinator.cert.pem"))
    moved = json.loads(json.dumps(config))
    for key, name in (("ca", "ca/ca.cert.pem"), ("certificate", "coordinator/coordinator.cert.pem"),
                      ("key", "coordinator/coordinator.key.pem"),
                      ("signing_key", "coordinator/coordinator.signing.key")):
        target = local_path(folder, config["tls"][key])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(made, name), target)
        moved["tls"][key] = target
    moved.update(host="127.0.0.1", port=0, metrics_port=0)
    moved["browser"]["port"] = 0
    moved["browser"]["page"] = image_copy_into(dockerfile_stages(read(DOCKERFILE)), config["browser"]["page"])
    password = local_path(folder, config["postgres"]["password_file"])
    os.makedirs(os.path.dirname(password), exist_ok=True)
    with open(password, "w") as f:
        f.write("not-the-password\n")
    moved["postgres"]["password_file"] = password
    return moved


def postgres_server():
    """The server of VEIL_TEST_POSTGRES (Scripts/postgres-test-cluster.sh), or None."""
    settings = os.environ.get("VEIL_TEST_POSTGRES")
    if not settings:
        return None
    with open(settings) as f:
        return json.load(f)


def psql(server, statement):
    psql_path = require_tool("psql")
    with open(server["password_file"]) as f:
        password = f.read().rstrip("\n")
    run_in([psql_path, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--host", server["host"], "--port",
            str(server["port"]), "--username", server["user"], "--dbname", server["database"],
            "--command", statement],
           env=dict(os.environ, PGPASSWORD=password, PGSSLMODE="disable" if server.get("tls") == "disable"
                    else "require"))


def own_database(test, server, purpose):
    """A database of its own on `server` for `test`, dropped at its end (after its processes, which
    are stopped by cleanups registered later)."""
    database = "veil_%s_%d_%d" % (purpose, os.getpid(), time.monotonic_ns())
    psql(server, "CREATE DATABASE %s" % database)
    test.addCleanup(psql, server, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % database)
    return database


def swift_seconds(path, pattern):
    """A duration in seconds written in a Swift source as `.seconds(N)`, found by `pattern`."""
    match = re.search(pattern, read(os.path.join(ROOT, path)))
    assert match, "%s: no %s" % (path, pattern)
    return int(match.group(1))


def rolling_update(replicas, max_surge, max_unavailable, syncs=20):
    """The pods (True: ready) of the old and the new ReplicaSet after a Deployment's rolling update,
    when only a leader is ever ready: a model of the Deployment controller's arithmetic
    (pkg/controller/deployment/rolling.go: reconcileNewReplicaSet, then reconcileOldReplicaSets
    with cleanupUnhealthyReplicas and scaleDownOldReplicaSetsForRollingUpdate; a ReplicaSet deletes
    its not-ready pods first), pods starting and stopping at once. When nobody leads, a new pod
    takes the lease before an old one — the kindest case for the rollout."""
    old, new = [True] + [False] * (replicas - 1), []
    for _ in range(syncs):
        if not any(old + new) and (old or new):
            (new or old)[0] = True
        # Scale the new ReplicaSet up, within replicas + maxSurge pods.
        total = len(old) + len(new)
        if len(new) < replicas and total < replicas + max_surge:
            new += [False] * min(replicas + max_surge - total, replicas - len(new))
            continue
        if not old:
            break
        # Scale the old ones down, keeping replicas - maxUnavailable available.
        min_available = replicas - max_unavailable
        max_scaled_down = len(old) + len(new) - min_available - (len(new) - sum(new))
        if max_scaled_down <= 0:
            continue
        old = sorted(old, reverse=True)
        old = old[:len(old) - min(max_scaled_down, len(old) - sum(old))]
        available = sum(old) + sum(new)
        if available > min_available:
            old = old[:len(old) - min(len(old), available - min_available)]
    return old, new


# --- the tests ------------------------------------------------------------------------------------


class DockerfileTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = dockerfile_stages(read(DOCKERFILE))

    def builder(self):
        return self.stages[0]

    def runtime(self):
        return self.stages[-1]

    def test_two_stages_a_swift_builder_and_a_slim_debian_runtime(self):
        self.assertEqual([(s.image, s.name) for s in self.stages],
                         [(BUILDER_IMAGE, "builder"), (RUNTIME_IMAGE, None)])
        # The tag's reason is given beside it.
        self.assertRegex(read(DOCKERFILE), r"#\s*%s: " % re.escape(BUILDER_IMAGE))
        # Nothing from the build but what is copied: no toolchain in the runtime stage.
        for options, _, _ in self.runtime().copies():
            self.assertIn("--from=builder", options)

    def test_the_builder_installs_every_system_library_the_manifests_name(self):
        providers = apt_providers()
        self.assertIn("Package.swift", providers)
        if not any(m.startswith(".build") for m in providers):
            skip_or_fail("no dependency checkouts in .build/checkouts (build first): GRDB's sqlite3 unchecked")
        installed = self.builder().apt_installs()
        for manifest, packages in providers.items():
            for package in packages:
                self.assertIn(package, installed, "%s names %s" % (manifest, package))
        # The system-library targets are found by pkg-config.
        self.assertIn("pkg-config", installed)

    def test_the_builder_builds_the_release_product_with_the_swift_runtime_linked_in(self):
        commands = " ".join(self.builder().all("RUN"))
        self.assertIn("swift build -c release --product veil --static-swift-stdlib", commands)

    def test_the_binary_and_its_resource_bundles_go_to_usr_local_bin(self):
        # SwiftPM's resource accessor looks beside the executable first (Bundle.main), then in
        # the build folder, which the runtime stage does not have.
        binary, source = veil_binary()
        with open(binary, "rb") as f:
            data = f.read()
        bin_folder = os.path.dirname(source)
        bundles = sorted({name.decode() for name in re.findall(rb"([A-Za-z0-9_]+\.resources)", data)
                          if os.path.isdir(os.path.join(bin_folder, name.decode()))})
        self.assertIn("Veil_VeilLearning.resources", bundles)  # the digits that `evaluate` reads
        accessor = os.path.join(bin_folder, "VeilLearning.build", "DerivedSources", "resource_bundle_accessor.swift")
        if os.path.isfile(accessor):
            self.assertIn('Bundle.main.bundleURL.appendingPathComponent("Veil_VeilLearning.resources")', read(accessor))
        run_lines = self.builder().all("RUN")
        staging = [line for line in run_lines if "/staging" in line]
        self.assertEqual(len(staging), 1)
        self.assertIn('cp "$bin/veil" /staging/', staging[0])
        self.assertRegex(staging[0], r"find -L \"\$bin\" .*-name '\*\.resources' -exec cp -R \{\} /staging/")
        self.assertIn((["--from=builder"], ["/staging/"], "/usr/local/bin/"), self.runtime().copies())
        self.assertEqual(json.loads(self.runtime().one("ENTRYPOINT")), ["veil"])

    def test_the_runtime_user_is_uid_10001_as_in_the_deployment(self):
        runtime = self.runtime()
        self.assertEqual(runtime.one("USER"), "10001:10001")
        commands = " ".join(runtime.all("RUN"))
        self.assertRegex(commands, r"groupadd --system --gid 10001 veil")
        self.assertRegex(commands, r"useradd --system --uid 10001 --gid veil ")
        pod = coordinator_deployment()["spec"]["template"]["spec"]
        self.assertEqual((pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]), (10001, 10001))

    def test_the_command_is_veil_serve_with_its_real_flags_and_the_mounted_config(self):
        command = json.loads(self.runtime().one("CMD"))
        self.assertEqual(command, ["serve", "--config", "/etc/veil/serve.json"])
        binary, _ = veil_binary()
        help_text = run(binary, "serve", "--help").stdout
        options = set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", help_text, re.M))
        self.assertIn("--config", options)
        veil = container(coordinator_deployment()["spec"]["template"]["spec"])
        for arguments in (command, veil["args"]):
            self.assertEqual(arguments[0], "serve")
            flags = {a for a in arguments if a.startswith("--")}
            self.assertLessEqual(flags, options, "veil serve --help lists %s" % sorted(options))
        # The Deployment runs the image's command, on the file its ConfigMap mounts.
        self.assertEqual(veil["args"], command)
        self.assertNotIn("command", veil)
        pod = coordinator_deployment()["spec"]["template"]["spec"]
        _, config_map = serve_json()
        source = mounted_source(pod, veil, command[command.index("--config") + 1])
        self.assertEqual(source[:3], ("configMap", config_map["metadata"]["name"], "serve.json"))

    def test_the_exposed_ports_are_serve_jsons_and_the_parsers_defaults(self):
        config, _ = serve_json()
        exposed = {int(p) for line in self.runtime().all("EXPOSE") for p in line.split()}
        sources = swift_sources()
        defaults = {swift_default("ServeConfiguration", "port", sources),
                    swift_default("ServeConfiguration", "metricsPort", sources),
                    swift_default("ServiceBrowser", "port", sources)}
        self.assertEqual(exposed, defaults)
        self.assertEqual(exposed, {config["port"], config["metrics_port"], config["browser"]["port"]})
        self.assertEqual(defaults, {7443, 9464, 8444})

    def test_the_participant_page_is_in_the_image_where_serve_json_says(self):
        config, _ = serve_json()
        page = config["browser"]["page"]
        source = image_copy_into(self.stages, page)
        self.assertEqual(source, os.path.join(ROOT, "web", "participant"))
        self.assertTrue(os.path.isfile(os.path.join(source, "participate.html")))

    def test_the_runtime_stage_installs_exactly_the_libraries_veil_links(self):
        binary, source = veil_binary()
        require_tool("ldd")
        require_tool("dpkg")
        release = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', read("/etc/os-release"), re.M))
        if release.get("VERSION_CODENAME") != "bookworm":
            self.skipTest("the libraries' Debian packages are looked up here, which is not Debian 12 (bookworm)")
        linked = linked_libraries(binary)
        self.assertIn("libsodium.so.23", linked)
        base = base_image_packages()
        installed = self.runtime().apt_installs()
        needed, swift_runtime = {}, []
        for soname, path in sorted(linked.items()):
            package = debian_package(path)
            if package is None:
                # The Swift runtime, Foundation, Dispatch: linked in by --static-swift-stdlib,
                # which needs each one's static archive in the toolchain.
                self.assertIn("/lib/swift/linux/", path, "%s (%s) belongs to no Debian package" % (soname, path))
                archive = path.replace("/lib/swift/linux/", "/lib/swift_static/linux/")[:-len(".so")] + ".a"
                self.assertTrue(os.path.isfile(archive), "no static %s for --static-swift-stdlib" % archive)
                swift_runtime.append(soname)
                continue
            needed.setdefault(package, []).append(soname)
        self.assertIn("libswiftCore.so", swift_runtime)
        for package, sonames in sorted(needed.items()):
            self.assertTrue(package in installed or package in base,
                            "%s (for %s) is neither installed by the runtime stage nor in %s"
                            % (package, ", ".join(sonames), RUNTIME_IMAGE))
        # And nothing installed that veil does not use.
        for package in sorted(installed):
            self.assertTrue(package in needed or package in RUNTIME_DATA_PACKAGES,
                            "the runtime stage installs %s, which %s does not link" % (package, source))
        for package, why in RUNTIME_DATA_PACKAGES.items():
            self.assertIn(package, installed, why)


def linked_libraries(binary):
    """{soname: path} of the shared libraries `ldd` resolves for the binary (no vDSO)."""
    libraries = {}
    for line in run("ldd", binary).stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise AssertionError("ldd %s: %s" % (binary, line))
        resolved = re.match(r"(\S+) => (/\S+) \(", line) or re.match(r"((/\S+)) \(", line)
        if resolved:
            libraries[os.path.basename(resolved.group(1))] = resolved.group(2)
    return libraries


def debian_package(path):
    """The Debian package that installed a library, by its path, its target, or their other
    spelling across the merged /usr (dpkg records the one the package shipped)."""
    candidates = [path, os.path.realpath(path)]
    for candidate in list(candidates):
        for merged, root in (("/usr/lib64/", "/lib64/"), ("/usr/lib/", "/lib/")):
            if candidate.startswith(merged):
                candidates.append(root + candidate[len(merged):])
            elif candidate.startswith(root):
                candidates.append(merged + candidate[len(root):])
    for candidate in candidates:
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if result.returncode == 0:
            return re.match(r"([^:,\s]+)", result.stdout).group(1)
    return None


def base_image_packages():
    """The packages debian:bookworm-slim has before any install: a minbase system (debootstrap's
    variant: the Essential packages and apt), taken on this Debian 12 machine as its installed
    Essential packages, apt, and what they depend on."""
    listing = run("dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Essential}\t${Pre-Depends}\t${Depends}\n")
    dependencies, roots = {}, {"apt"}
    for line in listing.stdout.splitlines():
        status, package, essential, pre_depends, depends = (line.split("\t") + [""] * 5)[:5]
        if not status.startswith("ii"):
            continue
        groups = [group for group in (pre_depends + "," + depends).split(",") if group.strip()]
        dependencies[package] = [[re.sub(r"[\s(:].*", "", alternative.strip()) for alternative in group.split("|")]
                                 for group in groups]
        if essential == "yes":
            roots.add(package)
    seen, stack = set(), [r for r in roots if r in dependencies]
    while stack:
        package = stack.pop()
        if package in seen:
            continue
        seen.add(package)
        for alternatives in dependencies[package]:
            present = [a for a in alternatives if a in dependencies]
            if present:
                stack.append(present[0])
    assert {"libc6", "libgcc-s1", "libstdc++6"} <= seen, "apt's own libraries are missing from %s" % sorted(seen)
    return seen


class DockerignoreTests(unittest.TestCase):
    def test_the_context_leaves_out_builds_caches_and_tests(self):
        patterns = dockerignore_patterns(read(DOCKERIGNORE))
        for path in (".git/HEAD", ".build/debug/veil", ".build/release/Veil_VeilLearning.resources/digits.csv.gz",
                     ".build-fuzz/debug/x", ".build_other/x", "Fuzz/.build/debug/x", "Fuzz/Sources/x.swift",
                     "python/tests/__pycache__/test_deployment.cpython-311.pyc", "python/veil_trainer/x.pyc",
                     "web/tests/vectors.js", "Vectors/secagg/x.json", "Package.resolved", ".swiftpm/x"):
            self.assertTrue(dockerignored(path, patterns), "%s is in the build context" % path)

    def test_the_context_keeps_what_the_build_and_the_image_use(self):
        patterns = dockerignore_patterns(read(DOCKERIGNORE))
        kept = ["Package.swift"]
        for folder in ("Sources", "Tests", os.path.join("web", "participant")):
            for directory, subfolders, files in os.walk(os.path.join(ROOT, folder)):
                subfolders[:] = [s for s in subfolders if s != "__pycache__"]
                kept += [os.path.relpath(os.path.join(directory, f), ROOT) for f in files if not f.endswith(".pyc")]
        self.assertGreater(len(kept), 100)
        for path in kept:
            self.assertFalse(dockerignored(path, patterns), "%s is left out of the build context" % path)
        # What the Dockerfile copies from the context itself.
        for stage in dockerfile_stages(read(DOCKERFILE)):
            for options, sources, _ in stage.copies():
                if not any(o.startswith("--from=") for o in options):
                    for source in sources:
                        if source not in (".", "./"):
                            self.assertFalse(dockerignored(os.path.normpath(source), patterns), source)

    def test_the_matcher_follows_dockers_rules(self):
        patterns = dockerignore_patterns("*.md\n**/*.pyc\ndocs\n!docs/keep.png\n/a/?.txt\n")
        cases = {"README.md": True, "deploy/README.md": False, "x.pyc": True, "a/b/x.pyc": True,
                 "docs/dashboard.png": True, "docs/keep.png": False, "a/1.txt": True, "a/12.txt": False,
                 "b/1.txt": False}
        for path, excluded in cases.items():
            self.assertEqual(dockerignored(path, patterns), excluded, path)


class ManifestValidationTests(unittest.TestCase):
    def test_every_manifest_is_valid_kubernetes_1_30_in_strict_mode(self):
        files = [os.path.join(KUBERNETES, f) for f in manifest_files()]
        self.assertIn(os.path.join(KUBERNETES, SECRETS_EXAMPLE), files)
        status, output = kubernetes_validate(*files)
        self.assertEqual(status, 0, output)
        passed = re.findall(r"^INFO (\S+) passed for resource (\S+) against version %s$"
                            % re.escape(KUBERNETES_VERSION), output, re.M)
        expected = [(f, "%s/%s" % (d["kind"].lower(), d["metadata"]["name"]))
                    for f in files for d in documents(os.path.basename(f))]
        self.assertEqual(sorted(passed), sorted(expected), output)

    def test_a_misspelt_field_fails_validation(self):
        text = read(os.path.join(KUBERNETES, "deployment.yaml"))
        self.assertEqual(len(re.findall(r"^  replicas: 3$", text, re.M)), 1)
        with tempfile.TemporaryDirectory(prefix="veil-kubernetes-") as folder:
            path = os.path.join(folder, "deployment.yaml")
            with open(path, "w") as f:
                f.write(re.sub(r"^  replicas: 3$", "  replica: 3", text, flags=re.M))
            status, output = kubernetes_validate(path)
            self.assertNotEqual(status, 0, output)
            self.assertIn("'replica' was unexpected", output)
            # Strict mode is what catches it: without --strict the same file passes.
            lenient = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--kubernetes-version",
                                      KUBERNETES_VERSION, path], capture_output=True, text=True, timeout=300)
            self.assertEqual(lenient.returncode, 0, lenient.stdout + lenient.stderr)

    def test_a_wrong_type_fails_validation(self):
        text = read(os.path.join(KUBERNETES, "deployment.yaml"))
        self.assertEqual(len(re.findall(r"containerPort: 9464$", text, re.M)), 1)
        with tempfile.TemporaryDirectory(prefix="veil-kubernetes-") as folder:
            path = os.path.join(folder, "deployment.yaml")
            with open(path, "w") as f:
                f.write(text.replace("containerPort: 9464", "containerPort: metrics"))
            status, output = kubernetes_validate(path)
            self.assertNotEqual(status, 0, output)
            self.assertIn("'metrics' is not of type 'integer'", output)

    def test_the_kustomization_lists_every_manifest_but_the_secrets(self):
        require_yaml()
        kustomization = yaml.safe_load(read(os.path.join(KUBERNETES, KUSTOMIZATION)))
        self.assertEqual(kustomization["namespace"], "veil")
        self.assertEqual(sorted(kustomization["resources"]), sorted(set(manifest_files()) - {SECRETS_EXAMPLE}))
        # Its image override names the Deployment's image.
        image = container(coordinator_deployment()["spec"]["template"]["spec"])["image"]
        self.assertEqual([i["name"] for i in kustomization["images"]], [image.split(":")[0]])

    def test_the_kustomization_renders_to_valid_resources(self):
        kubectl = kubectl_or_skip()
        rendered = run(kubectl, "kustomize", KUBERNETES).stdout
        with tempfile.TemporaryDirectory(prefix="veil-kubernetes-") as folder:
            path = os.path.join(folder, "rendered.yaml")
            with open(path, "w") as f:
                f.write(rendered)
            status, output = kubernetes_validate(path)
            self.assertEqual(status, 0, output)
        kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered) if d)
        self.assertEqual(kinds, ["ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "Service", "Service",
                                 "StatefulSet"])
        for document in yaml.safe_load_all(rendered):
            if document and document["kind"] != "Namespace":
                self.assertEqual(document["metadata"]["namespace"], "veil")


class ServeConfigurationTests(unittest.TestCase):
    """The ConfigMap's serve.json against the parser of Sources/VeilService/Config, and against a
    copy of `veil serve` started on it."""

    def test_every_key_is_one_the_parser_accepts(self):
        config, _ = serve_json()
        sources = swift_sources()

        def check(value, struct, path):
            accepted = {snake_case(k): k for k in coding_keys(struct, sources)}
            for key, item in value.items():
                where = ".".join(path + (key,))
                self.assertRegex(key, SNAKE_CASE, where)
                self.assertIn(key, accepted, "%s: not a key of %s" % (where, struct))
                self.assertEqual(from_snake_case(key), accepted[key], where)
                if isinstance(item, dict):
                    nested = property_types(struct, sources).get(accepted[key])
                    self.assertIsNotNone(nested, where)
                    check(item, nested, path + (key,))

        check(config, "ServeConfiguration", ())
        # The coordinator's state in PostgreSQL, not in a SQLite file (the parser refuses both).
        self.assertEqual(property_types("ServeConfiguration", sources)["postgres"], "PostgresSettings")
        self.assertNotIn("state", config)

    def test_veil_serve_accepts_it_and_connects_to_postgres(self):
        """Parsed and validated by the real `veil serve`, which then connects to postgres.host: here
        a closed port on loopback, so the connection is refused — after every check of the file."""
        binary, source = veil_binary()
        config, _ = serve_json()
        folder = tempfile.mkdtemp(prefix="veil-deployment-")
        self.addCleanup(shutil.rmtree, folder, True)
        moved = moved_config(config, folder)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        moved["postgres"].update(host="127.0.0.1", port=closed)
        result = subprocess.run([binary, "serve", "--config", write_config(folder, moved)], capture_output=True,
                                text=True, timeout=120)
        self.assertNotIn('unknown key "postgres"', result.stderr,
                         "%s predates serve.json's postgres section: build veil again" % source)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("PostgreSQL", result.stderr)
        self.assertIn("Connection refused", result.stderr)

    def test_veil_serve_starts_on_it_and_answers_healthz(self):
        """The coordinator runs on this serve.json and the probes' GET /healthz is answered 200
        "ok"; SIGTERM ends it well within the pod's grace period. Its store: the PostgreSQL server
        of VEIL_TEST_POSTGRES (Scripts/postgres-test-cluster.sh), in a database made for the test,
        else a SQLite file in the postgres section's place."""
        binary, _ = veil_binary()
        config, _ = serve_json()
        folder = tempfile.mkdtemp(prefix="veil-deployment-")
        self.addCleanup(shutil.rmtree, folder, True)
        moved = moved_config(config, folder)
        server = postgres_server()
        if server:
            moved["postgres"] = dict(server, database=own_database(self, server, "deployment"),
                                     lease_seconds=config["postgres"]["lease_seconds"])
        else:
            del moved["postgres"]
            moved["state"] = local_path(folder, "/var/lib/veil/coordinator.sqlite")
            os.makedirs(os.path.dirname(moved["state"]), exist_ok=True)
        serve = Process("serve", [binary, "serve", "--config", write_config(folder, moved)], folder)
        self.addCleanup(serve.stop)
        ports = serve.wait_for(r"^listening on 127\.0\.0\.1:(\d+), metrics on :(\d+)$", "stderr", 60)
        status, body = http_get("http://127.0.0.1:%s/healthz" % ports.group(2))
        self.assertEqual((status, body), (200, b"ok\n"))
        # Alone on its store it leads: ready.
        self.assertEqual(http_get("http://127.0.0.1:%s/readyz" % ports.group(2)), (200, b"leading\n"))
        if server:
            self.assertRegex(serve.stderr(), r"(?m)^leading under epoch 1 as \S+$")
        status, body = http_get("http://127.0.0.1:%s/metrics" % ports.group(2))
        self.assertEqual(status, 200)
        self.assertIn(b"veil_rounds_completed", body)
        grace = coordinator_deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        started = time.monotonic()
        self.assertEqual(serve.stop(), 0, serve.tail())
        self.assertLess(time.monotonic() - started, grace)


class CoordinatorTierTests(unittest.TestCase):
    """deployment.yaml's tier, run here on one PostgreSQL database (VEIL_TEST_POSTGRES): two copies
    of `veil serve` on the ConfigMap's serve.json (paths moved; the same gRPC and browser ports, as
    in the pods, and a metrics port each, as on two machines). The first leads and is ready; the
    second waits — /healthz 200 (alive) and /readyz 503 (not ready: not in the Service); SIGTERM
    to the leader hands over: it exits 0, and the second leads under epoch 2 and is ready, sooner
    than the lease could have run out."""

    def setUp(self):
        self.server = postgres_server()
        if self.server is None:
            skip_or_fail("VEIL_TEST_POSTGRES is not set (Scripts/postgres-test-cluster.sh start DIR prints its file)")
        self.binary, _ = veil_binary()
        self.config, _ = serve_json()
        self.folder = tempfile.mkdtemp(prefix="veil-deployment-tier-")
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.processes = []

    def tearDown(self):
        # Every process ends with the test, whatever happened (SIGTERM, then SIGKILL after 10 s);
        # the database is dropped after this, by its cleanup.
        for process in self.processes:
            process.stop()

    def start(self, name, config):
        path = write_config(self.folder, config, "/etc/veil/%s.json" % name)
        process = Process(name, [self.binary, "serve", "--config", path], self.folder)
        self.processes.append(process)
        return process

    def wait_for_http(self, url, expected, timeout):
        """(status, body) of GET url once it is `expected`, polling; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = http_get(url)
            except OSError as error:
                answer = error
            if answer == expected:
                return time.monotonic()
            if time.monotonic() >= deadline:
                self.fail("GET %s: %r, not %r within %.0f s" % (url, answer, expected, timeout))
            time.sleep(0.05)

    def test_a_standby_waits_unready_and_takes_over_from_a_sigtermed_leader(self):
        lease = self.config["postgres"]["lease_seconds"]
        moved = moved_config(self.config, self.folder)
        moved["postgres"] = dict(self.server, database=own_database(self, self.server, "tier"), lease_seconds=lease)
        # Nothing waits long: one round, and a leader with no participants gives up after 120 s.
        moved.update(rounds=1, registration_timeout_seconds=120, port=free_port())
        moved["browser"]["port"] = free_port()
        first = dict(moved, metrics_port=free_port())
        second = dict(moved, metrics_port=free_port())
        url = "http://127.0.0.1:%d%s"

        leader = self.start("tier-1", first)
        holder = leader.wait_for(r"^leading under epoch 1 as (\S+)$", "stderr", 60).group(1)
        listening = leader.wait_for(r"^listening on 127\.0\.0\.1:(\d+), metrics on :(\d+)$", "stderr", 60)
        self.assertEqual(tuple(map(int, listening.groups())), (moved["port"], first["metrics_port"]))
        self.wait_for_http(url % (first["metrics_port"], "/readyz"), (200, b"leading\n"), 10)
        self.assertEqual(http_get(url % (first["metrics_port"], "/healthz")), (200, b"ok\n"))

        standby = self.start("tier-2", second)
        waiting = standby.wait_for(r"^standby: (\S+) leads under epoch 1; waiting", "stderr", 60)
        self.assertEqual(waiting.group(1), holder)
        self.wait_for_http(url % (second["metrics_port"], "/healthz"), (200, b"ok\n"), 10)
        self.assertEqual(http_get(url % (second["metrics_port"], "/readyz")), (503, b"standby\n"))
        # It neither listens nor runs anything meanwhile.
        time.sleep(1)
        self.assertNotIn("listening on", standby.stderr())
        self.assertIsNone(standby.process.poll(), standby.tail())

        # A standby stopped (a scale-down) ends at once, with status 0: it holds nothing, and
        # handles the signal itself, as a container's process 1 must.
        third = self.start("tier-3", dict(moved, metrics_port=free_port()))
        third.wait_for(r"^standby: \S+ leads under epoch 1; waiting", "stderr", 60)
        os.kill(third.process.pid, signal.SIGTERM)
        try:
            third.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.fail("a standby did not end within 5 s of SIGTERM:\n" + third.tail())
        self.assertEqual(third.process.returncode, 0, third.tail())
        self.assertIn("standby: stopped by a signal", third.stderr())

        # A rollout's, a drain's or a deletion's SIGTERM to the leader.
        sent = time.monotonic()
        os.kill(leader.process.pid, signal.SIGTERM)
        exited = led = ready = None
        while time.monotonic() - sent < lease + 5 and None in (exited, led, ready):
            now = time.monotonic()
            if exited is None and leader.process.poll() is not None:
                exited = now
            if led is None and re.search(r"(?m)^leading under epoch 2 as \S+$", standby.stderr()):
                led = now
            if led is not None and ready is None:
                try:
                    if http_get(url % (second["metrics_port"], "/readyz")) == (200, b"leading\n"):
                        ready = now
                except OSError:
                    pass  # the port changes hands: the standby's server stops, the coordinator's starts
            time.sleep(0.02)
        self.assertIsNotNone(exited, "the leader did not exit within %g s of SIGTERM:\n%s" % (lease + 5, leader.tail()))
        self.assertEqual(leader.process.returncode, 0, leader.tail())
        self.assertIn("stopped early: the coordinator was stopped", leader.stdout())
        self.assertIsNotNone(led, "the standby did not lead within %g s:\n%s" % (lease + 5, standby.tail()))
        self.assertIsNotNone(ready, "the new leader's /readyz did not answer 200 within %g s" % (lease + 5))
        # Released, not run out: the lease, renewed every third of it until the leader stopped,
        # would have lasted at least two thirds of it after the exit; the standby asks every third.
        self.assertLess(led - exited, lease * 2 / 3, standby.tail())
        print("\n  handover after SIGTERM (lease_seconds %g): the leader exited in %.2f s, the standby led at "
              "%.2f s and was ready at %.2f s" % (lease, exited - sent, led - sent, ready - sent), file=sys.stderr)

        # The new leader serves where the old one did, and is alive and ready.
        listening = standby.wait_for(r"^listening on 127\.0\.0\.1:(\d+), metrics on :(\d+)$", "stderr", 30)
        self.assertEqual(tuple(map(int, listening.groups())), (moved["port"], second["metrics_port"]))
        self.assertEqual(http_get(url % (second["metrics_port"], "/healthz")), (200, b"ok\n"))
        # And stops as cleanly, with nobody to hand over to.
        grace = coordinator_deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        started = time.monotonic()
        self.assertEqual(standby.stop(), 0, standby.tail())
        self.assertLess(time.monotonic() - started, grace)


class DeploymentTests(unittest.TestCase):
    def setUp(self):
        self.deployment = coordinator_deployment()
        self.pod = self.deployment["spec"]["template"]["spec"]
        self.veil = container(self.pod)
        self.config, self.config_map = serve_json()

    def test_a_tier_of_three_replaced_all_at_once(self):
        spec = self.deployment["spec"]
        # One leader, two standbys.
        self.assertEqual(spec["replicas"], 3)
        self.assertEqual(spec["strategy"], {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": "100%", "maxSurge": 0}})
        self.assertLessEqual(spec["selector"]["matchLabels"].items(), spec["template"]["metadata"]["labels"].items())
        self.assertNotIn("minReadySeconds", spec)

    def test_the_rolling_update_replaces_the_leader_where_a_gentler_one_would_stall(self):
        """Only the leader is ever ready, so the Deployment controller counts one available pod.
        With every old pod going at once the update ends with three new pods, one of them leading;
        with maxUnavailable 1 (or 2) it stops after replacing standbys, the old leader left running."""
        old, new = rolling_update(3, max_surge=0, max_unavailable=3)
        self.assertEqual((old, sorted(new)), ([], [False, False, True]))
        for max_surge, max_unavailable in ((0, 1), (0, 2), (1, 0), (1, 1)):
            old, new = rolling_update(3, max_surge, max_unavailable)
            self.assertIn(True, old, "maxSurge %d, maxUnavailable %d" % (max_surge, max_unavailable))
            self.assertNotIn(True, new)

    def test_the_pods_are_spread_over_nodes_where_they_can_be(self):
        affinity = self.pod["affinity"]
        self.assertEqual(set(affinity), {"podAntiAffinity"})
        self.assertNotIn("requiredDuringSchedulingIgnoredDuringExecution", affinity["podAntiAffinity"])
        [preference] = affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        term = preference["podAffinityTerm"]
        self.assertEqual(term["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(term["labelSelector"], self.deployment["spec"]["selector"])

    def test_the_grace_period_outlasts_the_leaders_clean_stop(self):
        """SIGTERM: the gRPC streams drain (CoordinatorServer.drainTimeout), the webhooks' last alerts
        go out (notifier.drain), and only then is the lease released — all before SIGKILL."""
        source = os.path.join("Sources", "VeilTransport", "CoordinatorServer.swift")
        drain = swift_seconds(source, r"static let drainTimeout = Duration\.seconds\((\d+)\)")
        webhooks = swift_seconds(source, r"notifier\.drain\(within: \.seconds\((\d+)\)\)")
        self.assertEqual((drain, webhooks), (5, 10))
        self.assertGreater(self.pod["terminationGracePeriodSeconds"], drain + webhooks)

    def test_every_path_in_serve_json_is_mounted_or_in_the_image(self):
        stages = dockerfile_stages(read(DOCKERFILE))
        secrets = secret_keys()
        paths = [(p, v) for p, v in strings(self.config) if v.startswith("/")]
        self.assertEqual(len(paths), 6, paths)
        for where, path in paths:
            source = mounted_source(self.pod, self.veil, path)
            if source is None:
                copied = image_copy_into(stages, path)
                self.assertIsNotNone(copied, "%s: %s is neither mounted nor in the image" % (".".join(where), path))
                self.assertTrue(os.path.exists(copied), copied)
                continue
            kind, name, key, mount = source
            self.assertTrue(mount.get("readOnly"), path)
            if kind == "secret":
                self.assertIn(name, secrets, path)
                self.assertIn(key, secrets[name], "%s: Secret %s has no key %s" % (path, name, key))
            else:
                self.assertEqual(kind, "configMap", path)
                self.assertIn(key, resource("ConfigMap", name)["data"], path)

    def test_the_secrets_are_readable_by_veil_alone(self):
        # Group 10001 (fsGroup) and mode 0440: veil reads them, other users do not.
        self.assertEqual(self.pod["securityContext"]["fsGroup"], 10001)
        for volume in self.pod["volumes"]:
            if "secret" in volume:
                self.assertEqual(volume["secret"]["defaultMode"], 0o440, volume["name"])

    def test_readiness_is_readyz_and_liveness_healthz_on_the_metrics_port(self):
        """Readiness: GET /readyz, 200 for the leader alone (503 "standby"), so that the Service
        routes to it; liveness: GET /healthz, 200 from every process that runs."""
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = self.veil[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertEqual(container_port(self.veil, get["port"]), self.config["metrics_port"], probe)
            self.assertEqual(set(get), {"path", "port"}, probe)  # plain HTTP, the pod's own address
        # A standby that takes over is in the Service within a few seconds.
        readiness = self.veil["readinessProbe"]
        self.assertLessEqual(readiness["periodSeconds"] * readiness.get("successThreshold", 1), 5)
        # A restart needs a long silence: the port closes for a moment when a standby takes over.
        liveness = self.veil["livenessProbe"]
        self.assertGreaterEqual(liveness["periodSeconds"] * liveness["failureThreshold"], 30)

    def test_the_lease_is_set_in_serve_json(self):
        postgres = self.config["postgres"]
        self.assertIn("lease_seconds", postgres)
        self.assertTrue(1 <= postgres["lease_seconds"] <= 600)
        # Its tradeoff is written beside it, outside the JSON.
        comments = "\n".join(line for line in read(os.path.join(KUBERNETES, "configmap.yaml")).splitlines()
                             if line.startswith("#"))
        self.assertIn("lease_seconds %g" % postgres["lease_seconds"], comments)

    def test_the_container_ports_are_serve_jsons(self):
        self.assertEqual({p["name"]: p["containerPort"] for p in self.veil["ports"]},
                         {"grpc": self.config["port"], "metrics": self.config["metrics_port"],
                          "browser": self.config["browser"]["port"]})
        self.assertEqual(self.config["host"], "0.0.0.0")

    def test_resources_are_bounded(self):
        resources = self.veil["resources"]
        self.assertEqual(set(resources["requests"]), {"cpu", "memory"})
        self.assertEqual(set(resources["limits"]), {"cpu", "memory"})

    def test_every_pod_runs_restricted(self):
        """The checks of the Pod Security Standards' restricted profile that these pods touch."""
        for kind in ("Deployment", "StatefulSet"):
            pod = resource(kind)["spec"]["template"]["spec"]
            self.assertTrue(pod["securityContext"]["runAsNonRoot"], kind)
            self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"}, kind)
            self.assertIs(pod["automountServiceAccountToken"], False, kind)
            for c in pod["containers"]:
                security = c["securityContext"]
                self.assertIs(security["allowPrivilegeEscalation"], False, c["name"])
                self.assertIs(security["readOnlyRootFilesystem"], True, c["name"])
                self.assertIs(security["runAsNonRoot"], True, c["name"])
                self.assertEqual(security["capabilities"], {"drop": ["ALL"]}, c["name"])
                self.assertNotIn("privileged", security)
            for volume in pod.get("volumes", []):
                self.assertLessEqual(set(volume) - {"name"}, {"configMap", "secret", "emptyDir"}, volume["name"])
        labels = resource("Namespace")["metadata"]["labels"]
        self.assertEqual(labels["pod-security.kubernetes.io/enforce"], "restricted")

    def test_the_service_carries_the_three_ports_inside_the_cluster(self):
        service = resource("Service", "veil")
        self.assertEqual(service["spec"]["type"], "ClusterIP")
        # Ready pods only: the leader.
        self.assertIs(service["spec"]["publishNotReadyAddresses"], False)
        self.assertLessEqual(service["spec"]["selector"].items(),
                             self.deployment["spec"]["template"]["metadata"]["labels"].items())
        self.assertEqual({p["name"]: (p["port"], container_port(self.veil, p["targetPort"]))
                          for p in service["spec"]["ports"]},
                         {"grpc": (7443, 7443), "metrics": (9464, 9464), "browser": (8444, 8444)})

    def test_the_disruption_budget_covers_the_coordinator(self):
        budget = resource("PodDisruptionBudget")
        self.assertEqual(budget["apiVersion"], "policy/v1")
        self.assertEqual(budget["spec"]["selector"], self.deployment["spec"]["selector"])
        # One pod is ever ready, the leader: a budget asking for more could never be met. Drains
        # leave the leader alone and take the standbys, never ready, whenever asked.
        self.assertEqual(budget["spec"]["minAvailable"], 1)
        self.assertNotIn("maxUnavailable", budget["spec"])
        self.assertEqual(budget["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow")

    def test_every_resource_is_in_the_veil_namespace(self):
        for name in manifest_files():
            for document in documents(name):
                if document["kind"] == "Namespace":
                    self.assertEqual(document["metadata"]["name"], "veil")
                else:
                    self.assertEqual(document["metadata"].get("namespace"), "veil", (name, document["kind"]))

    def test_the_dev_postgres_is_the_one_serve_json_names(self):
        self.assertIn("FOR TRIALS ONLY", read(os.path.join(KUBERNETES, "postgres-dev.yaml")))
        postgres = self.config["postgres"]
        service = resource("Service", postgres["host"])
        self.assertEqual([p["port"] for p in service["spec"]["ports"]], [postgres["port"]])
        statefulset = resource("StatefulSet", postgres["host"])
        self.assertEqual(statefulset["spec"]["serviceName"], service["metadata"]["name"])
        pod = statefulset["spec"]["template"]["spec"]
        server = container(pod)
        environment = {e["name"]: e["value"] for e in server["env"]}
        self.assertEqual((environment["POSTGRES_DB"], environment["POSTGRES_USER"]),
                         (postgres["database"], postgres["user"]))
        self.assertEqual(container_port(server, service["spec"]["ports"][0]["targetPort"]), postgres["port"])
        self.assertEqual(postgres["tls"], "disable")
        # One password: the server's and the coordinator's come from the same Secret key.
        server_password = mounted_source(pod, server, environment["POSTGRES_PASSWORD_FILE"])
        coordinator_password = mounted_source(self.pod, self.veil, postgres["password_file"])
        self.assertEqual(server_password[:3], coordinator_password[:3])
        self.assertEqual(server_password[0], "secret")

    def test_the_secret_examples_hold_no_key_material(self):
        text = read(os.path.join(KUBERNETES, SECRETS_EXAMPLE))
        self.assertNotIn("-----BEGIN", text)
        self.assertIsNone(re.search(r"\b[0-9a-fA-F]{32,}\b", text))
        for document in documents(SECRETS_EXAMPLE):
            self.assertNotIn("data", document)
            for key, value in document["stringData"].items():
                self.assertTrue(value.startswith("placeholder: "), (document["metadata"]["name"], key))


class ReadmeCommandTests(unittest.TestCase):
    """The README's credential commands, run: `veil ca` with a copy of veil, then (with kubectl)
    each `kubectl create secret` client-side; the Secrets must have the keys the Deployment mounts."""

    def test_the_documented_commands_make_the_secrets_the_deployment_mounts(self):
        binary, _ = veil_binary()
        commands = readme_command_block()
        example = read(os.path.join(KUBERNETES, SECRETS_EXAMPLE))
        folder = tempfile.mkdtemp(prefix="veil-deployment-readme-")
        self.addCleanup(shutil.rmtree, folder, True)
        secret_commands = []
        for command in commands:
            words = shlex.split(command)
            if words[:2] == ["veil", "ca"]:
                run_in([binary] + words[1:], cwd=folder)
            elif words[:5] == ["kubectl", "-n", "veil", "create", "secret"]:
                secret_commands.append(command)
                # The same lines in secrets.example.yaml's comment.
                self.assertIn(command, " ".join(example.replace("#", " ").split()))
        pod = coordinator_deployment()["spec"]["template"]["spec"]
        wanted = {}
        for volume in pod["volumes"]:
            if "secret" in volume:
                items = volume["secret"].get("items")
                wanted[volume["secret"]["secretName"]] = {i["key"] for i in items} if items else None
        # Each --from-file exists after the veil ca commands, and is named as the Deployment mounts it.
        made = {}
        for command in secret_commands:
            words = shlex.split(command)
            name = words[words.index("generic") + 1]
            keys = set()
            for word in words:
                if word.startswith("--from-file="):
                    path = word[len("--from-file="):]
                    self.assertTrue(os.path.isfile(os.path.join(folder, path)), path)
                    keys.add(os.path.basename(path))
                elif word.startswith("--from-literal="):
                    keys.add(word[len("--from-literal="):].split("=")[0])
            made[name] = keys
        self.assertEqual(set(made), set(wanted))
        secrets = secret_keys()
        for name, keys in made.items():
            self.assertEqual(keys, secrets[name], name)
            if wanted[name] is not None:
                self.assertLessEqual(wanted[name], keys, name)
        kubectl = kubectl_or_skip()
        require_tool("openssl")
        for command in secret_commands:
            result = subprocess.run(
                ["bash", "-c", command.replace("kubectl ", shlex.quote(kubectl) + " ", 1)
                 + " --dry-run=client -o json"], cwd=folder, capture_output=True, text=True, timeout=120,
                env=dict(os.environ, KUBECONFIG=os.path.join(folder, "no-kubeconfig")))
            self.assertEqual(result.returncode, 0, result.stderr)
            secret = json.loads(result.stdout)
            self.assertEqual((secret["kind"], secret["metadata"]["namespace"]), ("Secret", "veil"))
            self.assertEqual(set(secret["data"]), made[secret["metadata"]["name"]])


if __name__ == "__main__":
    unittest.main()
