"""The container image and the install target (deploy kit, issue 18): the Dockerfile's
build steps are the project's own scripts, its runtime packages are exactly what the
binary links, `.dockerignore` keeps out nothing the build needs, and `cmake --install
--strip` gives a working worker. Building the image itself needs a container builder
and a base image: with OUTQ_IMAGE_TEST=1 (scripts/test.sh --full) and podman or docker
that can reach debian:12, the image is built and run; otherwise the test says why not."""
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

import harness
from harness import BUILD, OUTQ, ROOT


def _stages():
    """[(stage name or "", [(instruction, argument text)])] of the Dockerfile, continuation lines joined."""
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            stages.append((m.group(2) or "", m.group(1), []))
        else:
            stages[-1][2].append((instruction, " ".join(rest.split())))
    return stages


def _run_commands(steps):
    """The shell commands of RUN steps, without --mount options."""
    out = []
    for instruction, rest in steps:
        if instruction == "RUN":
            out.append(re.sub(r"^(--mount=\S+\s+)+", "", rest))
    return out


def test_the_image_builds_with_the_projects_own_scripts_and_copies_what_they_install():
    (build_name, build_base, build_steps), (_, runtime_base, runtime_steps) = _stages()
    assert build_base == "debian:12" and runtime_base == "debian:12-slim", (build_base, runtime_base)
    commands = _run_commands(build_steps)
    assert commands == ["bash scripts/install-deps.sh --build-only", "bash scripts/build.sh --release /opt/outq"], commands
    # The scripts take exactly these arguments (an unknown one is refused, so a typo cannot pass).
    for script, good in (("install-deps.sh", "--build-only"), ("build.sh", "--release")):
        text = open(os.path.join(ROOT, "scripts", script)).read()
        assert good in text, (script, good)
        bad = subprocess.run(["bash", os.path.join(ROOT, "scripts", script), "--no-such-flag"],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "usage:" in bad.stderr, (script, bad.returncode, bad.stderr)
    # What the runtime copies is where `cmake --install --prefix /opt/outq` puts the binary.
    copies = [rest for instruction, rest in runtime_steps if instruction == "COPY" and "--from=" in rest]
    assert copies == ["--from=%s /opt/outq/bin/outq /usr/local/bin/outq" % build_name], copies
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    assert re.search(r"install\(TARGETS outq RUNTIME DESTINATION \$\{CMAKE_INSTALL_BINDIR\}\)", cmake)
    runtime = dict(runtime_steps)
    assert re.fullmatch(r"\d+:\d+", runtime["USER"]) and not runtime["USER"].startswith("0:"), runtime["USER"]
    assert runtime["ENTRYPOINT"] == '["outq"]' and runtime["CMD"] == '["run"]', runtime
    assert runtime["HEALTHCHECK"].endswith('CMD ["outq", "health"]'), runtime["HEALTHCHECK"]
    assert not any("curl" in rest or "wget" in rest for _, rest in runtime_steps), "the image has no HTTP client"
    assert runtime["STOPSIGNAL"] == "SIGTERM"


def _linked_packages(binary):
    """The Debian packages owning the shared libraries `binary` links (ldd), e.g. {"libssl3", "libc6"}."""
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = re.findall(r"=> (/\S+)", ldd) + re.findall(r"^\s*(/lib\S*ld-linux\S+)", ldd, re.M)
    packages = set()
    for path in paths:
        real = os.path.realpath(path)
        for candidate in (path, real, real.replace("/usr/lib/", "/lib/"), real.replace("/lib/", "/usr/lib/", 1)):
            owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if owner.returncode == 0:
                packages.add(owner.stdout.split(":")[0])
                break
        else:
            raise AssertionError("no Debian package owns %s (%s)" % (path, real))
    return packages


def test_the_runtime_stage_installs_exactly_the_packages_of_the_libraries_the_worker_links():
    if harness.SANITIZED:
        print("skipped: a sanitizer build links the sanitizers' libraries, which no image ships")
        return
    runtime_run = " ".join(_run_commands(_stages()[1][2]))
    m = re.search(r"apt-get install -y -qq --no-install-recommends ((?:[a-z0-9][a-z0-9.+-]*\s*)+)", runtime_run)
    assert m, runtime_run
    listed = set(m.group(1).split())
    needed = _linked_packages(OUTQ)
    assert "libhiredis0.14" in needed and "libssl3" in needed, needed
    assert listed - {"ca-certificates"} == needed, ("listed but not linked", listed - needed - {"ca-certificates"},
                                                    "linked but not listed", needed - listed)
    assert "ca-certificates" in listed  # HTTPS providers and rediss:// verify against the system store


def _ignored(path, patterns):
    parts = path.split("/")
    for pattern in patterns:
        p = pattern.lstrip("/")
        if p.startswith("**/"):
            if any(fnmatch.fnmatch(part, p[3:]) for part in parts) or fnmatch.fnmatch(path, p[3:]):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), p) for i in range(1, len(parts) + 1)):
            return True
    return False


def test_dockerignore_keeps_out_nothing_the_release_build_needs():
    patterns = [line.strip() for line in open(os.path.join(ROOT, ".dockerignore"))
                if line.strip() and not line.startswith("#")]
    cmake = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    release_part = cmake.split("if(NOT OUTQ_BUILD_TESTS)")[0]
    needed = set(re.findall(r"\b((?:src|worker|adapters|deploy)/[\w./-]+\.(?:cpp|hpp|json|service))\b", release_part))
    needed |= {"CMakeLists.txt", "scripts/build.sh", "scripts/install-deps.sh"}
    assert len(needed) > 40, needed
    for path in sorted(needed):
        assert os.path.exists(os.path.join(ROOT, path)), path
        assert not _ignored(path, patterns), "%s is needed by the image's build but .dockerignore leaves it out" % path
    # Headers the sources include come along with their folders.
    for folder in ("src", "worker", "adapters"):
        assert not _ignored(folder + "/x.hpp", patterns), folder
    # What must stay out: the build trees and the repository.
    for path in ("build/worker/outq", ".git/config", "build-release/x", "tests/fakes/sandbox.py"):
        assert _ignored(path, patterns), path


def test_install_target_puts_a_stripped_working_worker_the_unit_and_the_example_under_the_prefix():
    if harness.SANITIZED:
        print("skipped: a sanitizer build is no release build to install")
        return
    prefix = tempfile.mkdtemp(prefix="outq-install-")
    try:
        subprocess.run(["cmake", "--install", BUILD, "--strip", "--prefix", prefix],
                       check=True, capture_output=True, timeout=300)
        binary = os.path.join(prefix, "bin", "outq")
        version = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30)
        assert version.returncode == 0 and re.search(r"\d+\.\d+\.\d+", version.stdout), version
        assert os.path.getsize(binary) < os.path.getsize(OUTQ) / 3, (os.path.getsize(binary), os.path.getsize(OUTQ))
        sections = subprocess.run(["readelf", "-S", binary], capture_output=True, text=True).stdout
        assert ".debug_info" not in sections and ".symtab" not in sections, "not stripped"
        assert os.path.isfile(os.path.join(prefix, "lib", "systemd", "system", "outq.service"))
        assert os.path.isfile(os.path.join(prefix, "share", "doc", "outq", "outq.example.json"))
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_image_builds_and_its_worker_runs_where_a_container_builder_can():
    """Behind OUTQ_IMAGE_TEST=1: podman (or docker) builds the image from the Dockerfile;
    its configuration is what the Dockerfile says, and the binary runs on the runtime
    stage's libraries alone, as the image's user."""
    if os.environ.get("OUTQ_IMAGE_TEST") != "1":
        print("skipped: set OUTQ_IMAGE_TEST=1 (scripts/test.sh --full) to build the image")
        return
    podman = shutil.which("podman")
    builder = podman or shutil.which("docker")
    assert builder, "OUTQ_IMAGE_TEST=1 but neither podman nor docker is installed (apt-get install podman)"
    if podman:
        # No registry here: the base images come from a Debian mirror (debootstrap).
        base = subprocess.run(["bash", os.path.join(ROOT, "tests", "tools", "debian-base-image.sh")],
                              capture_output=True, text=True, timeout=1800)
        assert base.returncode == 0, base.stderr[-2000:]
    tag = "localhost/outq-test:%d" % os.getpid()
    # chroot isolation: RUN steps need no OCI runtime (this sandbox cannot start one); the
    # docker format keeps HEALTHCHECK (OCI images have no such field).
    args = [builder, "build", "-t", tag] + (["--isolation", "chroot", "--format", "docker"] if podman else []) + [ROOT]
    built = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    try:
        inspect = subprocess.run([builder, "image", "inspect", tag], capture_output=True, text=True, check=True)
        image = json.loads(inspect.stdout)[0]
        config = image["Config"]
        assert config["User"] == "65532:65532", config["User"]
        assert config["Entrypoint"] == ["outq"] and config["Cmd"] == ["run"], config
        health_check = config.get("Healthcheck") or image.get("Healthcheck")  # docker: in Config; podman: beside it
        assert health_check and health_check["Test"] == ["CMD", "outq", "health"], health_check
        assert config.get("StopSignal") == "SIGTERM", config
        assert "OUTQ_CONFIG=/etc/outq/outq.json" in config["Env"], config["Env"]
        if podman:
            root = subprocess.run([podman, "image", "mount", tag], capture_output=True, text=True,
                                  check=True).stdout.strip()
            try:
                run = lambda *a: subprocess.run(["chroot", "--userspec=65532:65532", root, "/usr/local/bin/outq"]
                                                + list(a), capture_output=True, text=True, timeout=60)
                version = run("version")
                assert version.returncode == 0 and "outq" in version.stdout, version
                # Health against nothing: exit 1 (not a crash, not a missing library).
                health = run("health", "--metrics-url", "http://127.0.0.1:9")
                assert health.returncode == 1, health
                binary = os.path.join(root, "usr", "local", "bin", "outq")
                print("image: %.0f MB, binary %.1f MB" % (image.get("Size", 0) / 1e6, os.path.getsize(binary) / 1e6))
            finally:
                subprocess.run([podman, "image", "unmount", tag], capture_output=True, timeout=60)
        else:
            out = subprocess.run([builder, "run", "--rm", tag, "version"], capture_output=True, text=True, timeout=120)
            assert out.returncode == 0 and "outq" in out.stdout, out
    finally:
        subprocess.run([builder, "rmi", "-f", tag], capture_output=True, timeout=300)
