"""The Kubernetes kit in deploy/kubernetes/: every manifest parses and is listed by the
kustomization, the Deployment keeps the rules of docs/operations.md (probes, no preStop,
grace period, memory sized from the config), KEDA names the stream of docs/protocol.md,
the Secret holds exactly the files the config and KEDA read, and the config really starts
the real worker."""
import base64
import json
import os
import sys
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import yaml

from harness import ROOT, Env, free_port, load_jsonc, wait_until

KIT = os.path.join(ROOT, "deploy", "kubernetes")
PROTOCOL = os.path.join(ROOT, "docs", "protocol.md")
SECRETS_DIR = "/run/secrets/outq/"
# The example must never be applied; the partitioned ScaledObject replaces scaledobject.yaml on a cluster.
NOT_RESOURCES = {"kustomization.yaml", "secret.example.yaml", "scaledobject-partitioned.yaml"}
FINAL_WRITE_S = 3  # docs/operations.md "Shutdown and deploys": the final write deadline, about 1-3 s
GRACE_MARGIN_S = 5  # and "longer than shutdown_grace_ms plus 5 s"
MIB = 1 << 20


# --------------------------------------------------------------------------- reading the kit

def yaml_files():
    return sorted(f for f in os.listdir(KIT) if f.endswith((".yaml", ".yml")))


def docs(name):
    with open(os.path.join(KIT, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomization():
    [k] = docs("kustomization.yaml")
    return k


def resources():
    """Every object of the kustomization's resources, by (kind, name)."""
    out = {}
    for name in kustomization()["resources"]:
        for d in docs(name):
            out[(d["kind"], d["metadata"]["name"])] = d
    return out


def one(kind):
    found = [d for (k, _), d in resources().items() if k == kind]
    assert len(found) == 1, "expected one %s among the resources, found %d" % (kind, len(found))
    return found[0]


def config_file():
    """The path of outq.json as the kustomization's configMapGenerator names it."""
    [gen] = [g for g in kustomization().get("configMapGenerator", []) if g["name"] == config_map_name()]
    [entry] = gen["files"]
    key, _, path = entry.rpartition("=")
    assert (key or os.path.basename(path)) == "outq.json", "the ConfigMap key must be outq.json: %r" % entry
    return os.path.join(KIT, path)


def config():
    return load_jsonc(config_file())


def pod_spec():
    return one("Deployment")["spec"]["template"]["spec"]


def container():
    [c] = pod_spec()["containers"]
    return c


def volume(name):
    [v] = [v for v in pod_spec()["volumes"] if v["name"] == name]
    return v


def mount_of(path):
    [m] = [m for m in container()["volumeMounts"] if m["mountPath"] == path]
    return m


def config_map_name():
    [m] = [m for m in container()["volumeMounts"] if m["mountPath"] == "/etc/outq"]
    return volume(m["name"])["configMap"]["name"]


def secret_name():
    return volume(mount_of(SECRETS_DIR.rstrip("/"))["name"])["secret"]["secretName"]


def quantity_bytes(q):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i|[kMG])?", str(q))
    assert m, "unreadable quantity %r" % q
    return float(m.group(1)) * units.get(m.group(2), 1)


def protocol_stream_and_group(queue):
    """The jobs stream key of `queue` and its consumer group, read from docs/protocol.md's
    "Partition keys" table."""
    with open(PROTOCOL) as f:
        text = f.read()
    prefix = re.search(r"^### Partition keys \(`P` = `([^`]+)`\)", text, re.M)
    row = re.search(r"^\| `P jobs` \| stream, group `([^`]+)` \|", text, re.M)
    assert prefix and row, "docs/protocol.md no longer has the Partition keys table this test reads"
    assert "{Q}" in prefix.group(1), prefix.group(1)
    return prefix.group(1).replace("{Q}", "{%s}" % queue) + "jobs", row.group(1)


def secret_files_of(value, found=None):
    """Every /run/secrets/outq/... path a config value names (a {"file": ...} secret or a path)."""
    found = set() if found is None else found
    if isinstance(value, dict):
        for v in value.values():
            secret_files_of(v, found)
    elif isinstance(value, list):
        for v in value:
            secret_files_of(v, found)
    elif isinstance(value, str) and value.startswith(SECRETS_DIR):
        found.add(value)
    return found


def memory_constants():
    """The measured constants of the memory formula, from deployment.yaml's
    `# outq-memory: base_rss_mib=... job_factor=... mews_factor=...` line."""
    with open(os.path.join(KIT, "deployment.yaml")) as f:
        lines = [line for line in f if re.match(r"\s*# outq-memory:", line)]
    assert len(lines) == 1, "deployment.yaml must have one '# outq-memory:' line, found %d" % len(lines)
    pairs = dict(p.split("=", 1) for p in lines[0].split(":", 1)[1].split())
    assert set(pairs) == {"base_rss_mib", "job_factor", "mews_factor"}, pairs
    return {k: float(v) for k, v in pairs.items()}


def memory_needed_bytes(cfg, k):
    """base + J x (C + B + F) x job_factor + J x C x mews_factor (when Mews accounts exist)
    + C x the largest max_response_bytes outside Mews (deployment.yaml explains it)."""
    for key in ("concurrency", "fetch_batch", "max_job_bytes"):
        assert key in cfg, "outq.json must set %s explicitly (the memory limit depends on it)" % key
    assert "buffer" in cfg.get("lanes", {}), "outq.json must set lanes.buffer explicitly"
    j, c, f, b = cfg["max_job_bytes"], cfg["concurrency"], cfg["fetch_batch"], cfg["lanes"]["buffer"]
    answers = 0
    for name, provider in cfg["providers"].items():
        if name == "mews":
            continue
        limits = [provider.get("http", {}).get("max_response_bytes", 1048576)]
        limits += [a["http"]["max_response_bytes"] for a in provider.get("accounts", {}).values()
                   if "max_response_bytes" in a.get("http", {})]
        answers = max([answers] + limits)
    mews = bool(cfg["providers"].get("mews", {}).get("accounts"))
    return (k["base_rss_mib"] * MIB + j * (c + b + f) * k["job_factor"] + (j * c * k["mews_factor"] if mews else 0)
            + c * answers)


# --------------------------------------------------------------------------- the manifests

def test_deploy_kubernetes_every_yaml_file_parses_and_names_its_objects():
    files = yaml_files()
    assert {"kustomization.yaml", "deployment.yaml", "service.yaml", "servicemonitor.yaml", "pdb.yaml",
            "scaledobject.yaml", "secret.example.yaml"} <= set(files), files
    for name in files:
        objects = docs(name)
        assert objects, "%s holds no document" % name
        for d in objects:
            assert isinstance(d, dict), "%s: a document that is not a mapping" % name
            assert d.get("apiVersion") and d.get("kind"), "%s: apiVersion and kind are required: %r" % (name, d)
            assert (d.get("metadata") or {}).get("name"), "%s: %s without metadata.name" % (name, d["kind"])


def test_deploy_kubernetes_kustomization_lists_every_resource_and_generates_the_config():
    k = kustomization()
    listed = k["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice: %s" % listed
    for name in listed:
        assert os.path.exists(os.path.join(KIT, name)), "kustomization.yaml lists a missing file: %s" % name
    assert set(listed) == set(yaml_files()) - NOT_RESOURCES, \
        "kustomization.yaml resources %s, yaml files %s" % (sorted(listed), yaml_files())
    assert "secret.example.yaml" not in listed, "the example Secret must never be applied"
    # The Deployment mounts the generated ConfigMap by its generator name (kustomize adds the hash).
    generated = [g["name"] for g in k.get("configMapGenerator", [])]
    assert config_map_name() in generated, (config_map_name(), generated)
    assert os.path.exists(config_file())


def test_deploy_kubernetes_deployment_probes_ports_security_and_volumes():
    d = one("Deployment")
    spec, pod, c = d["spec"], pod_spec(), container()
    assert "replicas" not in spec, "KEDA owns the replica count"
    assert spec["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    assert c["args"] == ["run", "--config", "/etc/outq/outq.json"], c["args"]
    cfg = config()
    [port] = [p for p in c["ports"] if p.get("name") == "metrics"]
    assert port["containerPort"] == int(cfg["metrics_listen"].rsplit(":", 1)[1]) == 9464, port
    assert cfg["metrics_listen"] == "0.0.0.0:9464", cfg["metrics_listen"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path and get["port"] in ("metrics", 9464), (probe, get)
    live = c["livenessProbe"]
    # /healthz fails only after 5 minutes without progress: restarts need a lasting failure.
    assert live.get("periodSeconds", 10) * live.get("failureThreshold", 3) >= 30, live
    # preStop runs before SIGTERM while the worker still fetches: none, in any container.
    for each in pod["containers"] + pod.get("initContainers", []):
        assert "preStop" not in (each.get("lifecycle") or {}), "%s has a preStop hook" % each["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, sc
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), sc
    assert sc.get("runAsNonRoot", pod["securityContext"]["runAsNonRoot"]) is True
    assert sc.get("seccompProfile", pod["securityContext"]["seccompProfile"])["type"] == "RuntimeDefault"
    res = c["resources"]
    assert quantity_bytes(res["requests"]["memory"]) == quantity_bytes(res["limits"]["memory"]), res
    for m in c["volumeMounts"]:
        assert m.get("readOnly") is True, "%s is mounted writable" % m["mountPath"]
    assert volume(mount_of(SECRETS_DIR.rstrip("/"))["name"])["secret"]["secretName"] == secret_name()
    rolling = spec["strategy"]["rollingUpdate"]
    assert spec["strategy"]["type"] == "RollingUpdate" and "maxSurge" in rolling and "maxUnavailable" in rolling
    spread = pod.get("topologySpreadConstraints") or []
    anti = ((pod.get("affinity") or {}).get("podAntiAffinity") or {})
    assert any(t["topologyKey"] == "kubernetes.io/hostname" for t in spread) or anti, "pods are not spread over nodes"


def test_deploy_kubernetes_grace_period_covers_the_drain():
    cfg = config()
    grace = pod_spec()["terminationGracePeriodSeconds"]
    needed = cfg["shutdown_grace_ms"] / 1000 + FINAL_WRITE_S + GRACE_MARGIN_S
    assert grace >= needed, "terminationGracePeriodSeconds %s < shutdown_grace_ms/1000 + %d + %d = %s" \
        % (grace, FINAL_WRITE_S, GRACE_MARGIN_S, needed)


def test_deploy_kubernetes_memory_limit_covers_what_the_config_lets_a_worker_hold():
    # The factors hold with glibc's mmap threshold fixed, which the worker does itself
    # (worker/main.cpp, mallopt): without it the heap grows from wave to wave.
    k = memory_constants()
    needed = memory_needed_bytes(config(), k)
    limit = quantity_bytes(container()["resources"]["limits"]["memory"])
    assert limit >= needed, "memory limit %.0f MiB < %.1f MiB needed by outq.json (constants %s)" \
        % (limit / MIB, needed / MIB, k)
    # The arithmetic written under the constants states this total.
    with open(os.path.join(KIT, "deployment.yaml")) as f:
        text = f.read()
    assert re.search(r"= %.1f MiB" % (needed / MIB), text), \
        "deployment.yaml's arithmetic does not state the total %.1f MiB" % (needed / MIB)


def test_deploy_kubernetes_scaledobject_names_the_protocol_stream_and_keeps_a_pod():
    cfg = config()
    stream, group = protocol_stream_and_group(cfg.get("queue", "default"))
    so = one("ScaledObject")
    spec = so["spec"]
    target = spec["scaleTargetRef"]
    assert target["name"] == one("Deployment")["metadata"]["name"] and target.get("kind", "Deployment") == "Deployment"
    assert spec["minReplicaCount"] >= 1, "with no pod nothing moves due retries or takes over pending entries"
    assert spec["maxReplicaCount"] >= spec["minReplicaCount"]
    assert "pollingInterval" in spec and "cooldownPeriod" in spec
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis-streams"
    meta = trigger["metadata"]
    assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata values are strings: %r" % meta
    assert meta["stream"] == stream, (meta["stream"], stream)
    metrics = {"streamLength", "lagCount", "pendingEntriesCount"} & set(meta)
    assert len(metrics) == 1, "one scaling metric, got %s" % metrics
    if "streamLength" in meta:
        # KEDA reads streamLength only without consumerGroup (with it, XPENDING or the lag).
        assert "consumerGroup" not in meta, "consumerGroup makes KEDA ignore streamLength"
    else:
        assert meta.get("consumerGroup") == group, (meta.get("consumerGroup"), group)
        assert "lagCount" in meta, "pendingEntriesCount is 0 with no consumer and bounded by what pods hold"
    # The same Redis as the workers: host, port, database and TLS of redis.url.
    url = urllib.parse.urlsplit(cfg["redis"]["url"])
    assert meta["address"] == "%s:%d" % (url.hostname, url.port or 6379), (meta["address"], cfg["redis"]["url"])
    assert meta.get("enableTLS", "false") == ("true" if url.scheme == "rediss" else "false")
    assert meta.get("databaseIndex", "0") == (url.path.strip("/") or "0")
    auth = resources()[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
    # KEDA has its own Redis user (outq-keda: XLEN only), and the workers theirs.
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert set(refs) == {"username", "password"} and all(r["name"] == secret_name() for r in refs.values()), refs
    assert cfg["redis"]["password"] != {"file": SECRETS_DIR + refs["password"]["key"]}, \
        "KEDA must not read the workers' Redis password: it has its own user"
    assert url.username == "outq-worker", cfg["redis"]["url"]
    acl = open(os.path.join(ROOT, "deploy", "redis", "outq-users.acl")).read()
    assert re.search(r"^user outq-keda on .*%R~outq:\{default\}:jobs .*\+xlen", acl, re.M), "the KEDA user's ACL"
    assert re.search(r"^user outq-worker ", acl, re.M)


def test_deploy_kubernetes_secret_keys_are_exactly_the_files_the_config_and_keda_read():
    cfg = config()
    files = secret_files_of(cfg)
    for (kind, _), d in resources().items():
        if kind == "TriggerAuthentication":
            files |= {SECRETS_DIR + r["key"] for r in d["spec"].get("secretTargetRef", [])
                      if r["name"] == secret_name()}
    [secret] = docs("secret.example.yaml")
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == secret_name()
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    assert {SECRETS_DIR + k for k in keys} == files, \
        "Secret keys %s, files read %s" % (sorted(keys), sorted(f[len(SECRETS_DIR):] for f in files))
    with open(os.path.join(KIT, "secret.example.yaml")) as f:
        head = f.read(400).upper()
    assert "EXAMPLE" in head and "NEVER" in head, "secret.example.yaml must say loudly that it is an example"
    # Every credential of every account is a file secret, never a literal.
    for provider, p in cfg["providers"].items():
        for name, account in p["accounts"].items():
            for key in ("access_token", "client_token", "client_id", "client_secret", "token", "ticket",
                        "app_token", "password"):
                if key in account:
                    assert isinstance(account[key], dict) and account[key]["file"].startswith(SECRETS_DIR), \
                        "%s/%s %s is not a file secret" % (provider, name, key)
            for value in (account.get("headers") or {}).values():
                assert isinstance(value, dict) and value["file"].startswith(SECRETS_DIR), (provider, name)
    assert set(cfg["providers"]) == {"webhook", "mews", "mediaconnect", "onebox", "superoffice"}


def test_deploy_kubernetes_metrics_port_name_is_one_name_everywhere():
    port = [p for p in container()["ports"] if p["name"] == "metrics"][0]
    service = one("Service")
    monitor = one("ServiceMonitor")
    assert service["spec"].get("clusterIP") == "None", "the Service is headless"
    assert service["spec"]["selector"].items() <= pod_spec_labels().items()
    [service_port] = service["spec"]["ports"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service_port["name"] == port["name"], (endpoint, service_port, port)
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    assert endpoint.get("path", "/metrics") == "/metrics"
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def pod_spec_labels():
    return one("Deployment")["spec"]["template"]["metadata"]["labels"]


def test_deploy_kubernetes_pdb_allows_evicting_unready_pods():
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_spec_labels().items()


def test_deploy_kubernetes_kubectl_kustomize_renders():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("note: kubectl is not on PATH; `kubectl kustomize deploy/kubernetes` not checked")
        return
    out = subprocess.run([kubectl, "kustomize", KIT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, "kubectl kustomize failed: %s" % out.stderr
    rendered = [d for d in yaml.safe_load_all(out.stdout) if d]
    [cm] = [d for d in rendered if d["kind"] == "ConfigMap"]
    [dep] = [d for d in rendered if d["kind"] == "Deployment"]
    assert cm["metadata"]["name"].startswith(config_map_name() + "-"), cm["metadata"]["name"]
    names = [v["configMap"]["name"] for v in dep["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    assert names == [cm["metadata"]["name"]], "the Deployment does not mount the generated ConfigMap: %s" % names
    assert load_jsonc_text(cm["data"]["outq.json"]) == config()
    assert not [d for d in rendered if d["kind"] == "Secret"], "the rendered kit must not carry a Secret"


def load_jsonc_text(text):
    fd, path = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return load_jsonc(path)
    finally:
        os.unlink(path)


# --------------------------------------------------------------------------- the config really loads

def dummy_secret(key):
    if key.endswith("whsec"):  # a Standard Webhooks secret: whsec_ + base64 of 24 to 64 bytes
        return "whsec_" + base64.b64encode(b"a dummy signing key, 32 bytes..").decode()
    return "dummy-" + key


def rewrite_for_test(cfg, env, secrets_dir, redis_password):
    """The production config pointed at the test's redis-server and sandbox: every
    /run/secrets/outq file becomes a temporary file with a dummy value."""
    cfg = json.loads(json.dumps(cfg))
    written = set()

    def walk(value):
        if isinstance(value, dict):
            if set(value) == {"file"} and value["file"].startswith(SECRETS_DIR):
                key = value["file"][len(SECRETS_DIR):]
                path = os.path.join(secrets_dir, key)
                with open(path, "w") as f:
                    f.write((redis_password if key == "redis-password" else dummy_secret(key)) + "\n")
                written.add(key)
                return {"file": path}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    cfg = walk(cfg)
    cfg["redis"]["url"] = env.redis.url
    cfg["metrics_listen"] = "127.0.0.1:%d" % free_port()
    for provider in cfg["providers"].values():
        for account in provider["accounts"].values():
            for key in ("url", "platform_address", "base_url", "host", "token_url"):
                if key in account:
                    path = urllib.parse.urlsplit(account[key]).path
                    account[key] = env.sandbox.url + path
    assert SECRETS_DIR not in json.dumps(cfg), "a secret path was not rewritten"
    return cfg, written


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_deploy_kubernetes_config_starts_the_real_worker_and_drains_on_sigterm():
    cfg = config()
    with Env() as env:
        secrets_dir = os.path.join(env.dir, "secrets")
        os.mkdir(secrets_dir)
        password = "test-redis-password"
        env.r.config_set("requirepass", password)  # the worker must really read redis-password
        test_cfg, written = rewrite_for_test(cfg, env, secrets_dir, password)
        assert {SECRETS_DIR + k for k in written} == secret_files_of(cfg)
        w = env.worker(test_cfg, name="kit")
        ready = "http://%s/readyz" % test_cfg["metrics_listen"]
        wait_until(lambda: status_of(ready) == 200 or not w.alive(), 30, "/readyz 200")
        assert w.alive(), "the worker exited with the kit's config:\n%s" % w.log_tail()
        assert status_of(ready.replace("/readyz", "/healthz")) == 200
        # Every account of the kit was loaded (the gauge has a series per configured account).
        accounts = [(provider, account) for provider, p in cfg["providers"].items() for account in p["accounts"]]

        def missing_accounts():
            with urllib.request.urlopen(ready.replace("/readyz", "/metrics"), timeout=5) as r:
                paused = [line for line in r.read().decode().splitlines() if line.startswith("outq_account_paused{")]
            return [a for a in accounts
                    if not any('provider="%s"' % a[0] in line and 'account="%s"' % a[1] in line for line in paused)]
        try:
            wait_until(lambda: not missing_accounts(), 15, "every account in /metrics")
        except AssertionError:
            raise AssertionError("accounts missing from /metrics: %s" % missing_accounts())
        w.signal(signal.SIGTERM)
        code = w.wait(cfg["shutdown_grace_ms"] / 1000 + FINAL_WRITE_S + 10)
        assert code == 0, "exit %s after SIGTERM:\n%s" % (code, w.log_tail())
        assert "level=error" not in w.log() and '"level":"error"' not in w.log(), w.log_tail()


def test_deploy_kubernetes_partitioned_scaledobject_has_a_trigger_per_partition_by_the_tag_rule():
    """scaledobject-partitioned.yaml (a queue of 6 partitions on a cluster): one
    redis-cluster-streams trigger per partition, on exactly the streams the worker reads
    (the tag rule of docs/protocol.md, computed by the Python helper), each aiming at the
    single stream's target divided by the partitions."""
    sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
    import outq_client
    [so] = docs("scaledobject-partitioned.yaml")
    assert so["kind"] == "ScaledObject" and so["spec"]["minReplicaCount"] >= 1
    assert "scaledobject-partitioned.yaml" not in kustomization()["resources"], "an alternative, not a resource"
    triggers = so["spec"]["triggers"]
    queue = config().get("queue", "default")
    assert [t["metadata"]["stream"] for t in triggers] == \
        ["outq:{%s}:jobs" % outq_client.partition_tag(queue, i, 6) for i in range(6)]
    single = int(one("ScaledObject")["spec"]["triggers"][0]["metadata"]["streamLength"])
    for t in triggers:
        assert t["type"] == "redis-cluster-streams"
        meta = t["metadata"]
        assert all(isinstance(v, str) for v in meta.values()), meta
        assert "consumerGroup" not in meta and int(meta["streamLength"]) == round(single / 6), meta
        assert meta["addresses"].count(":") >= 1
        assert t["authenticationRef"]["name"] == triggers[0]["authenticationRef"]["name"]
    acl = open(os.path.join(ROOT, "deploy", "redis", "outq-users.acl")).read()
    assert re.search(r"^user outq-keda on .*%%R~outq:\{%s#\*\}:jobs .*\+xlen" % queue, acl, re.M), \
        "the KEDA user may read every partition's stream length"
