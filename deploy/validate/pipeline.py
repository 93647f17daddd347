#!/usr/bin/env python3
"""Offline validation of dailyfeed's deployment files (run by scripts/validate-deploy).

Good inputs must pass every stage; each broken case in helm/tests/cases.yaml must be rejected,
and by the stage it names (so a case cannot pass by failing somewhere unrelated).

  files       hadolint on the Dockerfile, compose-spec and GitHub-workflow JSON schemas,
              values.schema.json against its metaschema, yamllint on the hand-written YAML
  compose     docker-compose.yml: env names the code reads, ports from the README table,
              memory limits and reservations
  consistency the README's services and ports in the Dockerfile, values.yaml and images.yml;
              the Docker build context (.dockerignore) keeps what the build copies; every
              /internal route in the code is guarded by RequireService, and its callers are
              the ones values.yaml's serviceIdentity.internalRoutes gives the mesh
  helm        helm lint --strict, then helm template (values.yaml; values-canary.yaml; and
              helm/tests/switches.yaml, which flips the chart's other switches)
  yamllint    the rendered manifests
  kubernetes  kubernetes-validate, strict (unknown fields fail), offline schemas
  istio       round trip through Istio's pydantic models (unknown fields and wrong types
              fail) and Go-duration syntax
  policy      Rego policies in deploy/validate/policy (regopy)
  env         every env name a rendered workload gets is one the code reads
  checkov     checkov on the default and canary renders, the Dockerfile and the image
              workflow; every failed check fails, except the skips listed in
              deploy/validate/checkov.yaml

Environment: HELM (helm binary), CHECKOV (checkov binary; unset skips that stage, reported
as a failure), KUBE_VERSION (default 1.31.0).
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import yaml
from cloudcoil.models.istio.networking import v1 as istio_networking
from cloudcoil.models.istio.security import v1 as istio_security
from pydantic import ValidationError
from regopy import Interpreter
from yamllint import linter
from yamllint.config import YamlLintConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import codeenv  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHART = REPO / "helm" / "dailyfeed"
TESTS = REPO / "helm" / "tests"
RELEASE = "dailyfeed"
NAMESPACE = "dailyfeed"
KUBE_VERSION = os.environ.get("KUBE_VERSION", "1.31.0")
BIN = Path(sys.executable).parent

ISTIO_MODELS = {
    ("networking.istio.io/v1", "VirtualService"): istio_networking.VirtualService,
    ("networking.istio.io/v1", "DestinationRule"): istio_networking.DestinationRule,
    ("networking.istio.io/v1", "Gateway"): istio_networking.Gateway,
    ("security.istio.io/v1", "PeerAuthentication"): istio_security.PeerAuthentication,
    ("security.istio.io/v1", "AuthorizationPolicy"): istio_security.AuthorizationPolicy,
}
# Under every render: the callers' public keys, which a production render requires.
KEY_LAYER = TESTS / "identity-keys.yaml"
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
DURATION_KEYS = {"timeout", "interval", "baseEjectionTime", "time", "maxConnectionDuration"}

YAMLLINT = YamlLintConfig(file=str(HERE / "yamllint.yaml"))

# kubernetes-validate reads and parses its JSON schemas on every call; the files never change
# during a run, so parse each once (a render validates ~100 objects, the cases ~30 renders).
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents)


class Rejected(Exception):
    """A stage found problems."""

    def __init__(self, stage: str, problems: list[str]):
        super().__init__(f"{stage}: {len(problems)} problem(s)")
        self.stage = stage
        self.problems = problems


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


# --- stages --------------------------------------------------------------------------------


def stage_helm(values_files: list[Path]) -> str:
    """helm lint --strict and helm template; the rendered manifests."""
    args = [a for f in [KEY_LAYER, *values_files] for a in ("-f", str(f))]
    helm = os.environ["HELM"]
    lint = run([helm, "lint", "--strict", "--quiet", "--kube-version", KUBE_VERSION, str(CHART), *args])
    if lint.returncode != 0:
        lines = (lint.stdout + lint.stderr).splitlines()
        raise Rejected("helm", [ln.strip() for ln in lines if ln.strip() and not ln.startswith("==> Linting")])
    tmpl = run([helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                "--kube-version", KUBE_VERSION, *args])
    if tmpl.returncode != 0:
        raise Rejected("helm", [tmpl.stderr.strip()])
    return tmpl.stdout


def stage_yamllint(text: str, label: str) -> None:
    problems = [f"{label}:{p.line}:{p.column} {p.desc} ({p.rule})" for p in linter.run(text, YAMLLINT)]
    if problems:
        raise Rejected("yamllint", problems)


def parse(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def label(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def stage_kubernetes(objs: list[dict]) -> None:
    problems = []
    for o in objs:
        if (o.get("apiVersion"), o.get("kind")) in ISTIO_MODELS:
            continue
        try:
            kubernetes_validate.validate(o, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.append(f"{label(o)}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{label(o)}: {e.message}")
    if problems:
        raise Rejected("kubernetes", problems)


def _roundtrip_diff(a, b, path: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in a:
            if k not in b:
                out.append(f"{path}.{k}: unknown field")
            else:
                out += _roundtrip_diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items became {len(b)}"]
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in _roundtrip_diff(x, y, f"{path}[{i}]")]
    if a != b or type(a) is not type(b):
        return [f"{path}: {a!r} read back as {b!r}"]
    return []


def _durations(node, path: str) -> list[str]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and (k in DURATION_KEYS or k.endswith("Timeout")) and not GO_DURATION.match(v):
                out.append(f"{path}.{k}: {v!r} is not a duration (e.g. 10s, 1m)")
            out += _durations(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _durations(v, f"{path}[{i}]")
    return out


def stage_istio(objs: list[dict]) -> None:
    problems = []
    for o in objs:
        api = o.get("apiVersion", "")
        if "istio.io" not in api:
            continue
        model = ISTIO_MODELS.get((api, o.get("kind")))
        if model is None:
            problems.append(f"{label(o)}: no model for {api} {o.get('kind')}")
            continue
        try:
            back = model.model_validate(o).model_dump(mode="json", by_alias=True, exclude_unset=True)
        except ValidationError as e:
            for err in e.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.append(f"{label(o)}: {where}: {err['msg']}")
            continue
        problems += [f"{label(o)}: {p}" for p in _roundtrip_diff(o, back, "$")]
        problems += [f"{label(o)}: {p}" for p in _durations(o.get("spec", {}), "$.spec")]
    if problems:
        raise Rejected("istio", problems)


def stage_policy(objs: list[dict]) -> None:
    rego = Interpreter()
    for f in sorted((HERE / "policy").glob("*.rego")):
        rego.add_module(f.stem, f.read_text())
    rego.set_input({"objects": objs})
    out = json.loads(str(rego.query("data.dailyfeed.deploy.deny")))
    exprs = out.get("expressions") or [[]]
    denied = sorted(exprs[0]) if isinstance(exprs[0], list) else [f"unexpected policy result: {out}"]
    if denied:
        raise Rejected("policy", denied)


def stage_env(objs: list[dict], env: codeenv.CodeEnv) -> None:
    """Env names of every rendered workload container are ones the code reads."""
    configmaps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
    common = f"{RELEASE}-common"
    anyone = env.anyone()
    problems = []
    for o in objs:
        if o["kind"] not in ("Deployment", "Job"):
            continue
        app = o["spec"]["template"]["metadata"].get("labels", {}).get("app", "")
        service = app.removesuffix("-migrate")
        if service not in env.services:
            problems.append(f"{label(o)}: app label {app!r} is not a service in the README table")
            continue
        # A Job gets the shared config inline: any service's names will do there.
        own = env.allowed(service) if o["kind"] == "Deployment" else anyone
        for c in o["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                if e["name"] not in own:
                    problems.append(f"{label(o)}: env {e['name']} is not read by {service}")
            for src in c.get("envFrom", []):
                name = src.get("configMapRef", {}).get("name")
                if name is None:
                    continue
                cm = configmaps.get(name)
                if cm is None:
                    problems.append(f"{label(o)}: envFrom ConfigMap {name} is not rendered")
                    continue
                allowed = anyone if name == common else own
                for key in cm.get("data", {}):
                    if key not in allowed:
                        who = "any service" if name == common else service
                        problems.append(f"ConfigMap/{name}: {key} is not read by {who}")
    if problems:
        raise Rejected("env", sorted(set(problems)))


def check_compose(compose: dict, env: codeenv.CodeEnv) -> None:
    """docker-compose.yml against the code and the README."""
    problems = []
    services = compose.get("services", {})
    for name, svc in services.items():
        for key in ("mem_limit", "mem_reservation"):
            if key not in svc:
                problems.append(f"{name}: no {key} (seeds/000: every container is limited)")
        if "mem_limit" in svc and "mem_reservation" in svc:
            if _bytes(svc["mem_reservation"]) > _bytes(svc["mem_limit"]):
                problems.append(f"{name}: mem_reservation above mem_limit")
        base = name.removesuffix("-migrate")
        if base not in env.services:
            continue
        args = (svc.get("build") or {}).get("args") or {}
        if args.get("SERVICE") != base:
            problems.append(f"{name}: build arg SERVICE is {args.get('SERVICE')!r}, expected {base!r}")
        environment = svc.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
        allowed = env.allowed(base)
        for var, value in environment.items():
            if var not in allowed:
                problems.append(f"{name}: {var} is not read by {base}")
            peer = var.removesuffix("_URL").lower()
            if var.endswith("_URL") and peer in env.services:
                want = f"http://{peer}:{env.services[peer]}"
                if str(value).rstrip("/") != want:
                    problems.append(f"{name}: {var}={value}, expected {want}")
        port = env.services[base]
        if "SERVER_PORT" in environment and int(environment["SERVER_PORT"]) != port:
            problems.append(f"{name}: SERVER_PORT {environment['SERVER_PORT']} but the README says {port}")
        if name == base:
            published = [str(p).rsplit(":", 1)[-1].split("/")[0] for p in svc.get("ports", [])]
            if published != [str(port)]:
                problems.append(f"{name}: container ports {published}, the README says {port}")
            if "healthcheck" not in svc:
                problems.append(f"{name}: no healthcheck")
    for s in env.services:
        if s not in services:
            problems.append(f"{s}: service missing from docker-compose.yml")
    if problems:
        raise Rejected("compose", problems)


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops `path` from the build context (last matching line wins; a
    pattern matching a parent directory matches the path, as in Docker)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pat = raw[1:] if negate else raw
        pat = pat.strip().lstrip("/").rstrip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatch(c.rsplit("/", 1)[-1], pat[3:]) for c in candidates)
        else:
            hit = any(fnmatch.fnmatchcase(c, pat) and c.count("/") == pat.count("/") for c in candidates)
        if hit:
            ignored = not negate
    return ignored


def check_consistency(env: codeenv.CodeEnv) -> None:
    """The service list and ports agree across README, Dockerfile, chart values, the image
    workflow; the Docker build context holds what the Dockerfile copies."""
    problems = []
    dockerfile = (REPO / "Dockerfile").read_text()
    docker_ports = {m.group(1): int(m.group(2)) for m in re.finditer(r"\b([a-z]+)\) port=(\d+)", dockerfile)}
    if docker_ports != env.services:
        problems.append(f"Dockerfile ports {docker_ports} differ from the README table {env.services}")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart_ports = {name: svc.get("port") for name, svc in values["services"].items()}
    if chart_ports != env.services:
        problems.append(f"values.yaml ports {chart_ports} differ from the README table {env.services}")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "images.yml").read_text())
    matrix = workflow["jobs"]["build"]["strategy"]["matrix"]["service"]
    if sorted(matrix) != sorted(env.services):
        problems.append(f"images.yml builds {matrix}, the README lists {sorted(env.services)}")
    ignore = [ln for ln in (REPO / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    needed = ["Cargo.toml", "Cargo.lock", "crates/service-runtime/src/lib.rs", "deploy/docker/healthcheck",
              *(f"services/{s}/src/main.rs" for s in env.services)]
    for path in needed:
        if _dockerignored(path, ignore):
            problems.append(f".dockerignore drops {path}, which the image build needs")
    for path in ("target/release/member", ".git/HEAD", ".dev/test"):
        if not _dockerignored(path, ignore):
            problems.append(f".dockerignore keeps {path} in the build context")
    if problems:
        raise Rejected("consistency", problems)


def _bytes(v) -> int:
    m = re.fullmatch(r"(\d+)([bkmg]?)b?", str(v).strip().lower())
    if not m:
        raise Rejected("compose", [f"cannot read memory size {v!r}"])
    return int(m.group(1)) * {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2)]


def stage_files() -> None:
    """Dockerfile, compose spec, workflows, values schema, hand-written YAML."""
    problems = []
    r = run([str(BIN / "hadolint"), "--config", str(HERE / "hadolint.yaml"), "--no-color", str(REPO / "Dockerfile")])
    if r.returncode != 0:
        problems.append("hadolint: " + (r.stdout + r.stderr).strip())
    checks = [
        (["--builtin-schema", "vendor.compose-spec"], [REPO / "docker-compose.yml"]),
        (["--builtin-schema", "vendor.github-workflows"], sorted((REPO / ".github" / "workflows").glob("*.yml"))),
        (["--check-metaschema"], [CHART / "values.schema.json"]),
    ]
    for args, files in checks:
        r = run([str(BIN / "check-jsonschema"), "--no-cache", *args, *map(str, files)])
        if r.returncode != 0:
            problems.append(f"check-jsonschema {' '.join(args)}: " + (r.stdout + r.stderr).strip())
    sources = [REPO / "docker-compose.yml", CHART / "Chart.yaml", *sorted(CHART.glob("values*.yaml")),
               *sorted(TESTS.glob("*.yaml")), *sorted((REPO / ".github" / "workflows").glob("*.yml")),
               *sorted(HERE.glob("*.yaml"))]
    for f in sources:
        for p in linter.run(f.read_text(), YAMLLINT, str(f)):
            problems.append(f"yamllint {f.relative_to(REPO)}:{p.line}:{p.column} {p.desc} ({p.rule})")
    if problems:
        raise Rejected("files", problems)


def stage_checkov(renders: dict[str, str]) -> None:
    checkov = os.environ.get("CHECKOV")
    if not checkov:
        raise Rejected("checkov", ["CHECKOV is not set"])
    with tempfile.TemporaryDirectory(prefix="dailyfeed-checkov-") as tmp:
        root = Path(tmp)
        (root / "rendered").mkdir()
        for name, text in renders.items():
            (root / "rendered" / f"{name}.yaml").write_text(text)
        (root / "Dockerfile").write_text((REPO / "Dockerfile").read_text())
        wf = root / ".github" / "workflows"
        wf.mkdir(parents=True)
        (wf / "images.yml").write_text((REPO / ".github" / "workflows" / "images.yml").read_text())
        r = run([checkov, "--directory", str(root), "--framework", "kubernetes", "dockerfile", "github_actions",
                 "--config-file", str(HERE / "checkov.yaml"), "--output", "json", "--quiet", "--compact",
                 "--skip-download"], cwd=tmp, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
        try:
            reports = json.loads(r.stdout)
        except json.JSONDecodeError:
            raise Rejected("checkov", [f"checkov exited {r.returncode}: {(r.stdout + r.stderr).strip()[-2000:]}"])
    reports = reports if isinstance(reports, list) else [reports]
    problems, frameworks = [], set()
    for rep in reports:
        frameworks.add(rep.get("check_type"))
        for f in rep.get("results", {}).get("failed_checks", []):
            problems.append(f"{f['check_id']} {f['check_name']}: {f.get('resource')} ({f.get('file_path')})")
        if rep.get("summary", {}).get("parsing_errors"):
            problems.append(f"{rep.get('check_type')}: parsing errors")
    missing = {"kubernetes", "dockerfile", "github_actions"} - frameworks
    if missing:
        problems.append(f"checkov scanned no {', '.join(sorted(missing))} files")
    if problems:
        raise Rejected("checkov", sorted(set(problems)))


def check_internal_routes(code: dict) -> None:
    """The code's RequireService lists against values.yaml's serviceIdentity.internalRoutes."""
    problems = list(code.pop("unguarded", []))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = {}
    for svc, routes in (values.get("serviceIdentity", {}).get("internalRoutes") or {}).items():
        for r in routes:
            for path in r["paths"]:
                for method in r["methods"]:
                    chart[(svc, path, method)] = sorted(r["callers"])
    for key, callers in sorted(code.items()):
        if key not in chart:
            problems.append(f"{key[0]} {key[2]} {key[1]}: in the code (callers {callers}), not in serviceIdentity.internalRoutes")
        elif chart[key] != callers:
            problems.append(f"{key[0]} {key[2]} {key[1]}: code allows {callers}, the chart {chart[key]}")
    for key in sorted(set(chart) - set(code)):
        problems.append(f"{key[0]} {key[2]} {key[1]}: in serviceIdentity.internalRoutes, not served by the code")
    if problems:
        raise Rejected("consistency", problems)


# --- cases ---------------------------------------------------------------------------------


def rendered_stages(text: str, env: codeenv.CodeEnv, name: str) -> list[dict]:
    stage_yamllint(text, name)
    objs = parse(text)
    object_stages(objs, env)
    return objs


def object_stages(objs: list[dict], env: codeenv.CodeEnv) -> None:
    """The stages after yamllint (patched cases are objects, not template output)."""
    stage_kubernetes(objs)
    stage_istio(objs)
    stage_policy(objs)
    stage_env(objs, env)


def _walk(obj, path: str):
    """The parent container and final key of a dotted path (list indexes are numbers)."""
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = obj
    for p in parts[:-1]:
        node = node[p]
    return node, parts[-1]


def apply_patches(objs: list[dict], patches: list[dict]) -> list[dict]:
    objs = copy.deepcopy(objs)
    for p in patches:
        targets = [o for o in objs if o["kind"] == p["kind"] and p.get("name", o["metadata"]["name"]) == o["metadata"]["name"]]
        if not targets:
            raise SystemExit(f"patch {p}: nothing matches")
        parent, key = _walk(targets[0], p["path"])
        if "set" in p:
            parent[key] = p["set"]
        else:
            del parent[key]
    return objs


class Report:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def ok(self, what: str, started: float):
        self.passed += 1
        print(f"ok    {what} ({time.monotonic() - started:.1f} s)", flush=True)

    def fail(self, what: str, problems: list[str]):
        self.failed += 1
        print(f"FAIL  {what}", flush=True)
        for p in problems[:40]:
            print(f"        {p}", flush=True)
        if len(problems) > 40:
            print(f"        ... and {len(problems) - 40} more", flush=True)


def main() -> int:
    report = Report()
    env = codeenv.scan(REPO)
    renders: dict[str, str] = {}

    def good(what: str, fn):
        started = time.monotonic()
        try:
            result = fn()
        except Rejected as e:
            report.fail(f"{what}: {e.stage}", e.problems)
            return None
        report.ok(what, started)
        return result

    good("files (hadolint, compose spec, workflow schema, values schema metaschema, yamllint)", stage_files)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    good("docker-compose.yml env names and ports", lambda: check_compose(compose, env))
    good("services and ports agree: README, Dockerfile, values.yaml, images.yml, .dockerignore",
         lambda: check_consistency(env))
    good("internal routes: guarded in the code, with the callers the chart's policies allow",
         lambda: check_internal_routes(codeenv.internal_routes(REPO)))

    base_objs = {}
    for name, values in (("default", []), ("canary", [CHART / "values-canary.yaml"]),
                         ("switches", [TESTS / "switches.yaml"])):
        def render(values=values, name=name):
            text = stage_helm(values)
            return text, rendered_stages(text, env, name)
        result = good(f"chart render '{name}': helm lint + template, yamllint, kubernetes, istio, policy, env", render)
        if result:
            renders[name], base_objs[name] = result
    if "default" in renders and "canary" in renders:
        good("checkov on the default and canary renders, Dockerfile and images workflow",
             lambda: stage_checkov({k: renders[k] for k in ("default", "canary")}))

    cases = yaml.safe_load((TESTS / "cases.yaml").read_text())
    for case in cases:
        what = f"broken case '{case['name']}' is rejected by {case['expect']}"
        started = time.monotonic()
        try:
            if "compose" in case:
                check_compose(apply_patches_compose(compose, case["compose"]), env)
            elif "patch" in case:
                base = base_objs.get(case.get("base", "default"))
                if base is None:
                    report.fail(what, ["its base render failed"])
                    continue
                objs = apply_patches(base, case["patch"])
                object_stages(objs, env)
                if case["expect"] == "checkov":  # slow: only where a case is about it
                    stage_checkov({case["name"]: yaml.safe_dump_all(objs, sort_keys=False)})
            else:
                layers = [CHART / "values-canary.yaml"] if case.get("canary") else []
                text = stage_helm(layers + [TESTS / v for v in case["values"]])
                rendered_stages(text, env, case["name"])
        except Rejected as e:
            if e.stage == case["expect"]:
                report.ok(what, started)
                for p in e.problems[:3]:
                    print(f"        {p.splitlines()[0][:200]}", flush=True)
            else:
                report.fail(what, [f"rejected by {e.stage} instead:", *e.problems])
            continue
        report.fail(what, ["it passed every stage"])

    print(f"validate-deploy: {report.passed} passed, {report.failed} failed", flush=True)
    return 1 if report.failed else 0


def apply_patches_compose(compose: dict, patches: list[dict]) -> dict:
    compose = copy.deepcopy(compose)
    for p in patches:
        parent, key = _walk(compose["services"][p["service"]], p["path"])
        if "set" in p:
            parent[key] = p["set"]
        else:
            del parent[key]
    return compose


if __name__ == "__main__":
    sys.exit(main())
