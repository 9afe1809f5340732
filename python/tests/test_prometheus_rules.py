"""Checks of the shipped monitoring (deploy/): the Prometheus alerting rules and their unit tests
with the real promtool (`promtool check rules`, `promtool test rules`), the Grafana dashboard's
structure and PromQL, and that every `veil_…` metric either uses is in the metrics table of
Specs/wire.md §9. Standard library only (the YAML is read by a small parser of the subset the
files use, cross-checked against promtool's rule count). Without promtool the promtool checks
are skipped, unless VEIL_REQUIRE_TOOLS=1, when they fail."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RULES = os.path.join("deploy", "prometheus", "veil-alerts.yml")
RULE_TESTS = os.path.join("deploy", "prometheus", "veil-alerts.test.yml")
DASHBOARD = os.path.join("deploy", "grafana", "veil-dashboard.json")
WIRE = os.path.join("Specs", "wire.md")

SEVERITIES = {"info", "warning", "critical"}
PANEL_TYPES = {"timeseries", "stat", "table", "bargauge"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC = re.compile(r"(?<![A-Za-z0-9_:])veil_[A-Za-z0-9_]+")
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h", "${datasource}": "prometheus",
    "$instance": "coordinator:9464",
}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


# --- A parser of the YAML subset the rule files use: block mappings and sequences, plain,
# single- and double-quoted scalars on one line, block scalars (| and >), comments, [] and {}.
# Anything else is refused rather than misread.


class YamlSubsetError(ValueError):
    pass


_KEY = re.compile(r"""^(?P<key>'[^']*'|"[^"]*"|[^\s'"#\-\[\{][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s+(?P<rest>.*)|$)""")


class _YamlSubset:
    def __init__(self, text):
        self.lines = text.splitlines()
        self.i = 0

    def error(self, message):
        raise YamlSubsetError(f"line {self.i + 1}: {message}")

    def peek(self):
        """The next line holding content, as (indent, stripped text), or None at the end."""
        while self.i < len(self.lines):
            line = self.lines[self.i]
            text = line.strip()
            if text and not text.startswith("#"):
                lead = line[: len(line) - len(line.lstrip())]
                if "\t" in lead:
                    self.error("tab in indentation")
                return len(lead), text
            self.i += 1
        return None

    def document(self):
        value = self.block(0)
        if self.peek() is not None:
            self.error("unexpected content")
        return value

    def block(self, indent):
        head = self.peek()
        if head is None or head[0] < indent:
            return None
        column, text = head
        if text == "-" or text.startswith("- "):
            return self.sequence(column)
        if _KEY.match(text):
            return self.mapping(column)
        self.i += 1
        return self.scalar(text)

    def sequence(self, column):
        items = []
        while True:
            head = self.peek()
            if head is None or head[0] < column:
                return items
            if head[0] > column or not (head[1] == "-" or head[1].startswith("- ")):
                if head[0] == column:
                    return items
                self.error("bad indentation in a sequence")
            rest = head[1][1:].strip()
            if not rest or rest.startswith("#"):
                self.i += 1
                items.append(self.block(column + 1))
            else:
                # "- key: value" opens a mapping two columns in: reread the line as one.
                self.lines[self.i] = " " * (column + 2) + rest
                items.append(self.block(column + 2))

    def mapping(self, column):
        result = {}
        while True:
            head = self.peek()
            if head is None or head[0] < column:
                return result
            if head[0] > column:
                self.error("bad indentation in a mapping")
            if head[1] == "-" or head[1].startswith("- "):
                return result  # the parent's sequence goes on
            match = _KEY.match(head[1])
            if not match:
                self.error(f"not a key: {head[1]!r}")
            key = self.scalar(match.group("key"))
            if key in result:
                self.error(f"duplicate key {key!r}")
            rest = (match.group("rest") or "").strip()
            self.i += 1
            if not rest or rest.startswith("#"):
                nxt = self.peek()
                if nxt is not None and (
                    nxt[0] > column or (nxt[0] == column and (nxt[1] == "-" or nxt[1].startswith("- ")))
                ):
                    result[key] = self.block(nxt[0])
                else:
                    result[key] = None
            elif rest[0] in "|>":
                result[key] = self.block_scalar(rest, column)
            else:
                result[key] = self.scalar(rest)

    def block_scalar(self, header, column):
        match = re.fullmatch(r"([|>])([-+]?)\s*(#.*)?", header)
        if not match:
            self.error(f"unsupported block scalar header {header!r}")
        style, chomp = match.group(1), match.group(2)
        body = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() and len(line) - len(line.lstrip(" ")) <= column:
                break
            body.append(line)
            self.i += 1
        while body and not body[-1].strip():
            body.pop()
        if not body:
            return ""
        indent = min(len(line) - len(line.lstrip(" ")) for line in body if line.strip())
        lines = [line[indent:] for line in body]
        if style == "|":
            text = "\n".join(lines)
        else:
            text = ""
            for n, line in enumerate(lines):
                text += line if n == 0 or not line or not lines[n - 1] else " " + line
                text += "\n" if not line else ""
        return text if chomp == "-" else text + "\n"

    def scalar(self, text):
        if text.startswith("'"):
            n, out = 1, ""
            while True:
                end = text.find("'", n)
                if end < 0:
                    self.error("unterminated single-quoted scalar")
                out += text[n:end]
                if text.startswith("''", end):
                    out += "'"
                    n = end + 2
                    continue
                trailer = text[end + 1 :].strip()
                if trailer and not trailer.startswith("#"):
                    self.error("text after a quoted scalar")
                return out
        if text.startswith('"'):
            match = re.match(r'"(?:[^"\\]|\\.)*"', text)
            if not match:
                self.error("unterminated double-quoted scalar")
            trailer = text[match.end() :].strip()
            if trailer and not trailer.startswith("#"):
                self.error("text after a quoted scalar")
            try:
                return json.loads(match.group(0))
            except ValueError:
                self.error("unsupported escape in a double-quoted scalar")
        text = re.split(r"\s+#", text, maxsplit=1)[0].strip()
        if text in ("[]", "{}"):
            return [] if text == "[]" else {}
        if text[:1] in "[{&*!|>%@`":
            self.error(f"unsupported YAML: {text!r}")
        return text


def parse_yaml(text):
    return _YamlSubset(text).document()


# --- Specs/wire.md §9


def spec_metrics():
    """{name: type} from the metrics table of Specs/wire.md §9."""
    text = read(WIRE)
    start = re.search(r"^## 9\.", text, re.M)
    assert start, "Specs/wire.md has no section 9"
    end = re.compile(r"^## ", re.M).search(text, start.end())
    metrics = {}
    for line in text[start.start() : end.start() if end else len(text)].splitlines():
        if line.startswith("| `veil_"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            metrics[cells[0].strip("`")] = cells[1] if len(cells) > 1 else ""
    return metrics


def missing_from_spec(names, spec):
    """The names neither in the table nor a listed histogram's _bucket/_sum/_count series."""
    missing = set()
    for name in names:
        if name in spec:
            continue
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if base is not None and spec.get(base) == "histogram":
            continue
        missing.add(name)
    return sorted(missing)


# --- promtool


def promtool():
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("VEIL_REQUIRE_TOOLS") == "1":
        raise AssertionError("promtool is not installed and VEIL_REQUIRE_TOOLS=1")
    raise unittest.SkipTest("promtool is not installed (set VEIL_REQUIRE_TOOLS=1 to require it)")


def run_promtool(*args):
    result = subprocess.run(
        [promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    return result.returncode, result.stdout + result.stderr


def rules():
    document = parse_yaml(read(RULES))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard():
    return json.loads(read(DASHBOARD))


def grafana_exprs(board):
    """(where, expr) of every panel target and every query variable."""
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets") or []:
            out.append((f"panel {panel.get('id')} {panel.get('title')!r} {target.get('refId')}", target.get("expr")))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            out.append((f"variable {variable.get('name')}", query.get("query") if isinstance(query, dict) else query))
    return out


def substitute(expr):
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    return expr


class PromtoolTests(unittest.TestCase):
    def test_check_rules(self):
        code, output = run_promtool("check", "rules", RULES)
        self.assertEqual(code, 0, f"promtool check rules failed:\n{output}")
        found = re.search(r"SUCCESS: (\d+) rules found", output)
        self.assertIsNotNone(found, output)
        # The subset parser read the same rules promtool did.
        self.assertEqual(int(found.group(1)), len(rules()), output)

    def test_rule_unit_tests(self):
        code, output = run_promtool("test", "rules", RULE_TESTS)
        self.assertEqual(code, 0, f"promtool test rules failed:\n{output}")
        self.assertIn("SUCCESS", output)

    def test_dashboard_promql_parses(self):
        """Every dashboard query, with Grafana's variables filled in, is valid PromQL to promtool
        (each becomes a recording rule of a scratch rules file; JSON is YAML)."""
        exprs = [(where, expr) for where, expr in grafana_exprs(dashboard()) if expr and "label_values(" not in expr]
        group = {"name": "grafana", "rules": [
            {"record": f"grafana:query_{n}", "expr": substitute(expr)} for n, (_, expr) in enumerate(exprs)]}
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "dashboard-queries.yml")
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"groups": [group]}, f, indent=1)
            code, output = run_promtool("check", "rules", path)
        listing = "\n".join(f"  grafana:query_{n}  {where}: {expr}" for n, (where, expr) in enumerate(exprs))
        self.assertEqual(code, 0, f"promtool refused a dashboard query:\n{output}\n{listing}")


class RuleFileTests(unittest.TestCase):
    def test_group_and_rule_fields(self):
        document = parse_yaml(read(RULES))
        self.assertEqual([group["name"] for group in document["groups"]], ["veil"])
        all_rules = rules()
        self.assertTrue(all_rules)
        for rule in all_rules:
            name = rule.get("alert")
            with self.subTest(alert=name):
                self.assertTrue(name, f"not an alerting rule: {rule}")
                self.assertTrue((rule.get("expr") or "").strip(), "no expr")
                self.assertRegex(rule.get("for") or "", r"^\d+[smhdwy]$", "no for")
                self.assertIn((rule.get("labels") or {}).get("severity"), SEVERITIES)
                self.assertTrue(((rule.get("annotations") or {}).get("summary") or "").strip(), "no summary")

    def test_every_rule_fires_and_stays_quiet_in_a_unit_test(self):
        """Each (alert, severity) fires in some case of the unit tests, and each alert has a
        case with exp_alerts empty."""
        cases = [case for test in parse_yaml(read(RULE_TESTS))["tests"] for case in test.get("alert_rule_test") or []]
        fired = {(case["alertname"], (alert.get("exp_labels") or {}).get("severity"))
                 for case in cases for alert in case.get("exp_alerts") or []}
        quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
        for rule in rules():
            key = (rule["alert"], rule["labels"]["severity"])
            self.assertIn(key, fired, f"no unit test where {key[0]} fires at severity {key[1]}")
            self.assertIn(rule["alert"], quiet, f"no unit test where {rule['alert']} must not fire")


class DashboardTests(unittest.TestCase):
    def test_structure(self):
        board = dashboard()
        self.assertEqual(board.get("schemaVersion"), 39)
        variables = {v["name"]: v for v in board["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        ids = [panel.get("id") for panel in board["panels"]]
        self.assertEqual(len(ids), len(set(ids)), f"panel ids repeat: {ids}")
        self.assertTrue(all(isinstance(i, int) for i in ids), ids)
        for panel in board["panels"]:
            with self.subTest(panel=panel.get("title")):
                self.assertIn(panel["type"], PANEL_TYPES)
                self.assertEqual(set(panel["gridPos"]), {"x", "y", "w", "h"})
                self.assertLessEqual(panel["gridPos"]["x"] + panel["gridPos"]["w"], 24)
                self.assertEqual(panel["datasource"]["uid"], "${datasource}")
                self.assertTrue(panel.get("targets"), "no targets")
                for target in panel["targets"]:
                    self.assertTrue((target.get("expr") or "").strip(), f"target {target.get('refId')} has no expr")
                    self.assertEqual(target["datasource"]["uid"], "${datasource}")
                ref_ids = [target.get("refId") for target in panel["targets"]]
                self.assertEqual(len(ref_ids), len(set(ref_ids)), ref_ids)


class SpecTests(unittest.TestCase):
    def test_metric_names_are_in_wire_md(self):
        spec = spec_metrics()
        self.assertIn("veil_rounds_total", spec, "the §9 metrics table was not found")
        used = {}
        for rule in rules():
            for name in METRIC.findall(rule["expr"]):
                used.setdefault(name, set()).add(f"rule {rule['alert']}")
        for where, expr in grafana_exprs(dashboard()):
            for name in METRIC.findall(expr or ""):
                used.setdefault(name, set()).add(f"dashboard {where}")
        missing = missing_from_spec(used, spec)
        if missing:
            self.fail(
                "metrics used in deploy/ but not in the metrics table of Specs/wire.md §9:\n"
                + "\n".join(f"  {name}  ({'; '.join(sorted(used[name]))})" for name in missing))

    def test_histogram_suffixes_only_for_histograms(self):
        spec = {"veil_a_seconds": "histogram", "veil_b": "gauge", "veil_b_count": "gauge"}
        self.assertEqual(missing_from_spec(["veil_a_seconds_bucket", "veil_a_seconds_sum", "veil_b_count"], spec), [])
        self.assertEqual(missing_from_spec(["veil_b_sum", "veil_c_bucket"], spec), ["veil_b_sum", "veil_c_bucket"])


class YamlSubsetTests(unittest.TestCase):
    def test_subset(self):
        text = (
            "# comment\n"
            "a:\n"
            "  - name: x  # trailing\n"
            "    expr: |\n"
            "      up\n"
            "\n"
            "        == 0\n"
            "    labels:\n"
            "      s: 'it''s: {{ $labels.x }}'\n"
            "      d: \"say \\\"hi\\\"\"\n"
            "    empty: []\n"
            "  - plain\n"
            "b:\n"
            "- 1m\n"
            "c: >-\n"
            "  folded\n"
            "  text\n"
        )
        self.assertEqual(parse_yaml(text), {
            "a": [{"name": "x", "expr": "up\n\n  == 0\n",
                   "labels": {"s": "it's: {{ $labels.x }}", "d": 'say "hi"'}, "empty": []}, "plain"],
            "b": ["1m"], "c": "folded text"})

    def test_refuses_what_it_does_not_read(self):
        for text in ("a: [1, 2]\n", "a: &x 1\n", "a: 1\n  b: 2\n", "a: 'open\n"):
            with self.subTest(text=text), self.assertRaises(YamlSubsetError):
                parse_yaml(text)


if __name__ == "__main__":
    unittest.main()
