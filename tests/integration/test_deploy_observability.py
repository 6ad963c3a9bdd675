"""The deployment kit's observability files (deploy/grafana/outq-dashboard.json,
deploy/prometheus/outq-alerts.yaml and its promtool unit tests) against the real worker:
the rules pass `promtool check rules` and `promtool test rules`, every alert has a case
where it fires and one where it must not; every metric and label that a PromQL expression
of the dashboard or of the rules uses exists in a real worker's /metrics (which itself
passes `promtool check metrics`); the dashboard is importable (a datasource variable used
by every panel, unique panel ids) and never sums the queue gauges, which every worker
reports identically (docs/operations.md, "Metrics")."""
import http.client
import json
import os
import re
import shutil
import subprocess

import yaml

from harness import ROOT, Env, free_port, job, wait_until

DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "outq-dashboard.json")
RULES = os.path.join(ROOT, "deploy", "prometheus", "outq-alerts.yaml")
RULE_TESTS = os.path.join(ROOT, "deploy", "prometheus", "outq-alerts.test.yaml")
OPERATIONS = os.path.join(ROOT, "docs", "operations.md")
RUNBOOK_PREFIX = "https://github.com/outq/outq/blob/main/docs/operations.md#"

# Series Prometheus makes itself (not in a worker's scrape), and the labels it attaches
# to every scraped series.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added",
                  "scrape_samples_post_metric_relabeling", "ALERTS", "ALERTS_FOR_STATE"}
TARGET_LABELS = {"instance", "job"}
OUTCOMES = {"sent", "dead", "retry", "delay", "duplicate"}  # outq_jobs_total's outcome label

AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
               "quantile", "limitk", "limit_ratio"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}


def _promtool():
    path = shutil.which("promtool")
    assert path, "promtool missing: apt-get install prometheus (scripts/install-deps.sh)"
    return path


# --- a small PromQL tokenizer -----------------------------------------------------

_STRING = r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`'
_LEXER = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>%s)
  | (?P<range>\[[^\]]*\])
  | (?P<braces>\{(?:%s|[^}"'`])*\})
  | (?P<var>\$\{[^}]*\}|\$\w+)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%%^<>,=@])
""" % (_STRING, _STRING), re.X)
_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(%s)\s*(,\s*|$)" % _STRING)


def _lex(expr):
    out, i = [], 0
    while i < len(expr):
        m = _LEXER.match(expr, i)
        assert m, "cannot tokenize %r at %r" % (expr, expr[i:i + 30])
        i = m.end()
        if m.lastgroup not in ("space", "string", "range", "var", "number"):  # literals, durations, Grafana variables
            out.append((m.lastgroup, m.group(0)))
    return out


def _matchers(braces):
    """[(label, op, value)] of a {...} selector; fails on anything else inside it."""
    body, found, i = braces[1:-1].strip(), [], 0
    while i < len(body):
        m = _MATCHER.match(body, i)
        assert m and m.end() > i, "cannot read the matchers %r" % braces
        found.append((m.group(1), m.group(2), m.group(3)[1:-1]))
        i = m.end()
    return found


def parse(expr):
    """Tokens of a PromQL expression, each a dict with "kind": metric (name, matchers),
    agg, func, group (keyword, labels), keyword, open, close, op. String literals, range
    and offset durations, numbers and Grafana variables are dropped."""
    raw = _lex(expr)
    tokens, i = [], 0
    while i < len(raw):
        kind, text = raw[i]
        following = raw[i + 1] if i + 1 < len(raw) else (None, None)
        if kind == "ident" and text in GROUPING:
            labels = []
            if following[0] == "open":
                j = i + 2
                while raw[j][0] != "close":
                    if raw[j][0] == "ident":
                        labels.append(raw[j][1])
                    else:
                        assert raw[j] == ("op", ","), "unexpected %r in %s(...) of %r" % (raw[j], text, expr)
                    j += 1
                i = j
            tokens.append({"kind": "group", "keyword": text, "labels": labels})
        elif kind == "ident" and text.lower() in KEYWORDS:
            tokens.append({"kind": "keyword", "text": text})
        elif kind == "ident" and text in AGGREGATORS and (following[0] == "open" or following[1] in ("by", "without")):
            tokens.append({"kind": "agg", "name": text})
        elif kind == "ident" and following[0] == "open":
            tokens.append({"kind": "func", "name": text})
        elif kind == "ident":
            matchers = []
            if following[0] == "braces":
                matchers = _matchers(following[1])
                i += 1
            tokens.append({"kind": "metric", "name": text, "matchers": matchers})
        elif kind == "braces":  # {__name__="x", ...}
            matchers = _matchers(text)
            names = [v for label, op, v in matchers if label == "__name__" and op == "="]
            assert names, "a selector without a metric name in %r" % expr
            tokens.append({"kind": "metric", "name": names[0], "matchers": matchers})
        else:
            tokens.append({"kind": kind, "text": text})
        i += 1
    depth = 0
    for t in tokens:
        depth += {"open": 1, "close": -1}.get(t["kind"], 0)
        assert depth >= 0, "unbalanced parentheses in %r" % expr
    assert depth == 0, "unbalanced parentheses in %r" % expr
    return tokens


def _closing(tokens, open_index):
    depth = 0
    for j in range(open_index, len(tokens)):
        depth += {"open": 1, "close": -1}.get(tokens[j]["kind"], 0)
        if depth == 0:
            return j
    raise AssertionError("unbalanced parentheses")


def aggregations(tokens):
    """[(aggregator, grouping keyword or None, labels, first, last)]: the token range of
    each aggregation's argument."""
    found = []
    for a, t in enumerate(tokens):
        if t["kind"] != "agg":
            continue
        group = None
        arg = a + 1
        if tokens[arg]["kind"] == "group":
            group, arg = tokens[arg], arg + 1
        assert tokens[arg]["kind"] == "open", "an aggregation without an argument"
        end = _closing(tokens, arg)
        if group is None and end + 1 < len(tokens) and tokens[end + 1]["kind"] == "group" \
                and tokens[end + 1]["keyword"] in ("by", "without"):
            group = tokens[end + 1]
        found.append((t["name"], group["keyword"] if group else None, group["labels"] if group else [], arg, end))
    return found


def references(expr):
    """(metrics, grouping) of an expression: metrics = [(name, matchers)], grouping =
    [(keyword, label, names of the metrics it applies to)]."""
    tokens = parse(expr)
    metrics = [(t["name"], t["matchers"]) for t in tokens if t["kind"] == "metric"]
    grouping = []
    aggs = aggregations(tokens)
    for k, t in enumerate(tokens):
        if t["kind"] != "group":
            continue
        scope = [name for name, _ in metrics]  # on/ignoring/group_*: the whole expression
        for _, _, labels, first, last in aggs:
            if t["keyword"] in ("by", "without") and (k == first - 1 or k == last + 1):
                scope = [x["name"] for x in tokens[first:last + 1] if x["kind"] == "metric"]
        grouping += [(t["keyword"], label, scope) for label in t["labels"]]
    return metrics, grouping


def enclosing_aggregations(tokens, index):
    """The aggregations whose argument holds tokens[index], innermost first."""
    around = [(last - first, name, keyword, labels) for name, keyword, labels, first, last in aggregations(tokens)
              if first < index < last]
    return [(name, keyword, labels) for _, name, keyword, labels in sorted(around)]


# --- the files --------------------------------------------------------------------

def _dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def _rules():
    with open(RULES) as f:
        return yaml.safe_load(f)


def _alerts():
    return [rule for group in _rules()["groups"] for rule in group["rules"] if "alert" in rule]


def _all_panels(panels):
    for p in panels:
        yield p
        yield from _all_panels(p.get("panels") or [])


def _variable_query(variable):
    q = variable.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")


def expressions(dashboard, rules):
    """(where, PromQL) of every expression: the dashboard's targets and query variables
    (label_values(EXPR, label) gives EXPR), and every rule."""
    out = []
    for p in _all_panels(dashboard.get("panels", [])):
        for t in p.get("targets") or []:
            out.append(("panel %r target %s" % (p.get("title"), t.get("refId")), t.get("expr", "")))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = _variable_query(v).strip()
        m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)", q, re.S)
        if m:
            out.append(("variable %s" % v["name"], m.group(1)))
        elif not q.startswith("label_values("):
            out.append(("variable %s" % v["name"], re.sub(r"^query_result\((.*)\)$", r"\1", q, flags=re.S)))
    for group in rules.get("groups", []):
        for rule in group["rules"]:
            out.append(("rule %s" % (rule.get("alert") or rule.get("record")), rule["expr"]))
    return out


def label_values_variables(dashboard):
    """[(variable, metric expression, label)] of label_values(EXPR, label) variables."""
    out = []
    for v in dashboard.get("templating", {}).get("list", []):
        m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)", _variable_query(v).strip(), re.S)
        if v.get("type") == "query" and m:
            out.append((v["name"], m.group(1), m.group(2)))
    return out


def scrape_labels(text):
    """sample name → the label names its samples carry, from an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s", line)
        assert m, line
        labels = set(re.findall(r'([a-zA-Z_]\w*)="(?:\\.|[^"\\])*"', m.group(2) or ""))
        out.setdefault(m.group(1), set()).update(labels)
    return out


def problems(dashboard, rules, scraped):
    """What the dashboard's and the rules' PromQL uses that a worker's scrape lacks."""
    found = []
    for where, expr in expressions(dashboard, rules):
        metrics, grouping = references(expr)
        if not metrics:
            found.append("%s: no metric in %r" % (where, expr))
        for name, matchers in metrics:
            if name in PROMETHEUS_OWN:
                continue
            if name not in scraped:
                found.append("%s: metric %s is not in the scrape" % (where, name))
                continue
            for label, op, value in matchers:
                if label != "__name__" and label not in scraped[name] | TARGET_LABELS:
                    found.append("%s: %s has no label %s (it has %s)" % (where, name, label, sorted(scraped[name])))
                if label == "outcome" and op in ("=", "=~"):
                    for v in value.split("|"):
                        if v not in OUTCOMES:
                            found.append("%s: outcome %r is not one of %s" % (where, v, sorted(OUTCOMES)))
        for keyword, label, scope in grouping:
            carriers = [n for n in scope if n in scraped and label in scraped[n]]
            if label not in TARGET_LABELS and not carriers and not all(n in PROMETHEUS_OWN for n in scope):
                found.append("%s: %s (%s) but none of %s has that label" % (where, keyword, label, scope))
    for variable, expr, label in label_values_variables(dashboard):
        for name, _ in references(expr)[0]:
            if name in scraped and label not in scraped[name] | TARGET_LABELS:
                found.append("variable %s: %s has no label %s" % (variable, name, label))
    return found


# --- the tests ----------------------------------------------------------------------

def test_the_promql_tokenizer_finds_metrics_and_labels_only():
    metrics, grouping = references(
        'histogram_quantile(0.99, sum by (le, provider) (rate(outq_send_duration_seconds_bucket'
        '{provider=~"$provider", account="a,b}"}[$__rate_interval] offset 5m))) > bool 0.5e1 and on() vector(1)')
    assert metrics == [("outq_send_duration_seconds_bucket", [("provider", "=~", "$provider"), ("account", "=", "a,b}")])]
    assert grouping == [("by", "le", ["outq_send_duration_seconds_bucket"]),
                        ("by", "provider", ["outq_send_duration_seconds_bucket"])]
    metrics, grouping = references(
        'sum(rate(outq_jobs_total{outcome="dead"}[5m])) by (class) / ignoring(class) group_left '
        'max without (instance) (label_replace(outq_ready, "dst", "$1", "src", "(outq_fake_total)"))')
    assert [name for name, _ in metrics] == ["outq_jobs_total", "outq_ready"]
    assert grouping == [("by", "class", ["outq_jobs_total"]), ("ignoring", "class", ["outq_jobs_total", "outq_ready"]),
                        ("without", "instance", ["outq_ready"])]
    tokens = parse('max by (queue) (delta(outq_queue_dead_letters[30m])) > 0 or sum(outq_queue_waiting_jobs)')
    index = [i for i, t in enumerate(tokens) if t["kind"] == "metric"]
    assert enclosing_aggregations(tokens, index[0]) == [("max", "by", ["queue"])]
    assert enclosing_aggregations(tokens, index[1]) == [("sum", None, [])]
    assert references('{__name__="outq_ready", job="outq"} == 0')[0] == [
        ("outq_ready", [("__name__", "=", "outq_ready"), ("job", "=", "outq")])]
    scraped = {"outq_ready": {"le"}}
    assert problems({}, {"groups": [{"rules": [{"alert": "X", "expr": "max by (queue) (outq_ready)"}]}]}, scraped) \
        == ["rule X: by (queue) but none of ['outq_ready'] has that label"]


def test_the_rules_pass_promtool_and_every_alert_has_firing_and_quiet_cases():
    promtool = _promtool()
    check = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", RULE_TESTS], capture_output=True, text=True, timeout=120)
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr

    alerts = _alerts()
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names)), names
    with open(OPERATIONS) as f:
        anchors = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
                   for heading in re.findall(r"^#+ (.+)$", f.read(), re.M)}
    for a in alerts:
        assert a.get("labels", {}).get("severity") in ("page", "ticket"), a["alert"]
        annotations = a.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), a["alert"]
        url = annotations.get("runbook_url", "")
        assert url.startswith(RUNBOOK_PREFIX) and url[len(RUNBOOK_PREFIX):] in anchors, (a["alert"], url)
        # Nothing pages (or opens a ticket) on one evaluation: at least 5 minutes.
        m = re.fullmatch(r"(\d+)([mh])", a.get("for", ""))
        assert m and int(m.group(1)) * (60 if m.group(2) == "h" else 1) >= 5, (a["alert"], a.get("for"))

    with open(RULE_TESTS) as f:
        tests = yaml.safe_load(f)
    assert tests["rule_files"] == [os.path.basename(RULES)]
    firing, quiet = set(), set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            assert check["alertname"] in names, "a test of an unknown alert %s" % check["alertname"]
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
            for expected in check.get("exp_alerts") or []:
                assert expected.get("exp_annotations"), "%s: annotations unchecked" % check["alertname"]
    assert not set(names) - firing, "alerts without a case where they fire: %s" % sorted(set(names) - firing)
    assert not set(names) - quiet, "alerts without a case where they must not fire: %s" % sorted(set(names) - quiet)


def test_the_dashboard_is_importable_and_every_panel_uses_the_datasource_variable():
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41, dashboard["schemaVersion"]
    assert dashboard.get("uid") and dashboard.get("title")
    assert dashboard.get("id") is None  # an exported dashboard: Grafana assigns the id
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus", ds
    for name in ("queue", "provider", "account"):
        v = variables[name]
        assert v["type"] == "query" and _variable_query(v).startswith("label_values("), v
        assert v["datasource"] in ({"type": "prometheus", "uid": "${datasource}"}, "${datasource}"), v
    assert {v for v, _, _ in label_values_variables(dashboard)} >= {"queue", "provider", "account"}

    def uses_variable(datasource):
        return datasource in ("${datasource}", "$datasource") or (
            isinstance(datasource, dict) and datasource.get("uid") in ("${datasource}", "$datasource"))

    panels = list(_all_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), ids
    titles = set()
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (p["title"], g)
        if p["type"] == "row":
            continue
        assert p["title"] not in titles, "two panels titled %r" % p["title"]
        titles.add(p["title"])
        assert uses_variable(p.get("datasource")), (p["title"], p.get("datasource"))
        assert p.get("targets"), p["title"]
        for t in p["targets"]:
            assert uses_variable(t.get("datasource")), (p["title"], t.get("refId"), t.get("datasource"))
            assert t.get("expr", "").strip() and t.get("refId"), (p["title"], t)
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), (p["title"], refs)

    # What the issue asks for, by the metrics the panels use.
    used = {name for where, expr in expressions(dashboard, {}) if where.startswith("panel")
            for name, _ in references(expr)[0]}
    for name in ("outq_jobs_total", "outq_send_duration_seconds_bucket", "outq_queue_waiting_jobs",
                 "outq_queue_pending_jobs", "outq_queue_delayed_jobs", "outq_queue_dead_letters",
                 "outq_queue_oldest_waiting_age_seconds", "outq_account_paused", "outq_account_circuit_open",
                 "outq_limiter_waiting_jobs", "outq_in_flight_jobs", "outq_concurrency_slots",
                 "outq_unwritten_outcomes", "outq_redis_roundtrip_seconds_bucket", "outq_redis_last_ok_age_seconds",
                 "outq_ready"):
        assert name in used, "no panel shows %s" % name
    quantiles = {float(q) for _, expr in expressions(dashboard, {})
                 for q in re.findall(r"histogram_quantile\(\s*([\d.]+)\s*,\s*sum by \([^)]*\) \(rate\("
                                     r"outq_send_duration_seconds_bucket", expr)}
    assert quantiles >= {0.5, 0.95, 0.99}, quantiles


def test_queue_gauges_are_aggregated_with_max_by_queue_and_never_summed():
    """Every worker reports the same outq_queue_* figures: a sum would multiply the depth
    by the number of workers."""
    seen = 0
    for where, expr in expressions(_dashboard(), _rules()):
        if where.startswith("variable"):
            continue
        tokens = parse(expr)
        for i, t in enumerate(tokens):
            if t["kind"] != "metric" or not t["name"].startswith("outq_queue_"):
                continue
            seen += 1
            around = enclosing_aggregations(tokens, i)
            assert around, "%s: %s without an aggregation over the workers" % (where, t["name"])
            assert all(name != "sum" for name, _, _ in around), "%s: sums %s: %r" % (where, t["name"], expr)
            assert around[0] == ("max", "by", ["queue"]), "%s: %s not in max by (queue): %r" % (where, t["name"], expr)
            assert not any(f["kind"] == "func" and f["name"].startswith("sum_over_time") for f in tokens), expr
    assert seen >= 8, seen


def _metrics_text(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        c.close()
        return body if r.status == 200 else ""
    except OSError:
        return ""


def test_every_metric_and_label_of_the_dashboard_and_the_rules_is_in_a_real_scrape():
    promtool = _promtool()
    with Env() as env:
        port = free_port()
        env.worker(env.config(metrics_listen="127.0.0.1:%d" % port))
        # A sent job, a dead letter, a 429 that pauses account a and a retry, and account b
        # failing until its circuit breaker opens: labelled series of every family.
        env.enqueue([job("obs-sent"), job("obs-dead", sandbox={"status": 400}),
                     job("obs-429", sandbox={"status": 429, "times": 1, "retry_after": "1"})]
                    + [job("obs-503-%d" % i, account="b", sandbox={"status": 503}) for i in range(6)])
        env.wait_results(["obs-sent", "obs-dead", "obs-429"], timeout=30)
        wanted = ('outq_queue_waiting_jobs{queue="t"}', 'outcome="dead"', 'outcome="sent"',
                  'outq_send_duration_seconds_bucket{', 'outq_redis_roundtrip_seconds_bucket{',
                  'outq_account_circuit_open{provider="webhook",account="b"} 1')
        text = wait_until(lambda: (lambda t: t if all(w in t for w in wanted) else None)(_metrics_text(port)), 20,
                          "labelled series in /metrics")

        check = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), (check.stdout + check.stderr).decode()

        scraped = scrape_labels(text)
        dashboard, rules = _dashboard(), _rules()
        found = problems(dashboard, rules, scraped)
        assert not found, "\n".join(found)

        # The cross-check does catch a made-up metric and a label a metric does not have.
        bogus = json.loads(json.dumps(dashboard))
        panel = next(p for p in bogus["panels"] if p.get("targets"))
        panel["targets"].append(dict(panel["targets"][0], refId="Z", expr="sum(rate(outq_bogus_total[5m]))"))
        panel["targets"].append(dict(panel["targets"][0], refId="Y", expr='max by (queue) (outq_ready{queue="t"})'))
        found = problems(bogus, rules, scraped)
        assert any("outq_bogus_total is not in the scrape" in p for p in found), found
        assert any("outq_ready has no label queue" in p for p in found), found
        assert any("by (queue) but none of ['outq_ready']" in p for p in found), found
        broken_rules = {"groups": [{"name": "x", "rules": [
            {"alert": "Bogus", "expr": 'sum by (shard) (rate(outq_jobs_total{outcome="lost"}[5m])) > 0'}]}]}
        found = problems({}, broken_rules, scraped)
        assert len(found) == 2 and "by (shard)" in found[1] and "'lost'" in found[0], found
