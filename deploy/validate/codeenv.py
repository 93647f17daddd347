"""What the code reads: environment variable names per service, and ports from the README.

Names come from the Rust sources themselves, so a variable added to compose or Helm values
before any code reads it (or misspelt) is caught:

* every quoted ALL_CAPS string in non-test sources under crates/ and services/<name>/src is a
  name some code may read;
* the resource modules of service-runtime (postgres, redis, kafka, mongodb) count only for the
  services whose sources use them (`service_runtime::kafka::...`), so compose cannot hand
  DATABASE_URL to a service without a database;
* `<SERVICE>_URL` peer variables are built with format!("{}_URL") in ServiceName::url_var, so
  they are accepted for every service when that function is present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

QUOTED = re.compile(r'"([A-Z][A-Z0-9_]*[A-Z0-9])"')
RESOURCE_MODULES = ("postgres", "redis", "kafka", "mongodb")
README_ROW = re.compile(r"^\|\s*([a-z]+)\s*\|\s*(\d{2,5})\s*\|")


def _non_test_source(path: Path) -> str:
    """The file's text up to its first `#[cfg(test)]` (test modules sit at the end)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def _names(paths) -> set[str]:
    names: set[str] = set()
    for p in paths:
        names |= set(QUOTED.findall(_non_test_source(p)))
    return names


@dataclass
class CodeEnv:
    services: dict[str, int]          # name -> port (README "What runs")
    shared: set[str]                  # read by the shared crates for every service
    modules: dict[str, set[str]]      # resource module -> names it reads
    uses: dict[str, set[str]]         # service -> resource modules it uses
    own: dict[str, set[str]]          # service -> names in its own sources
    peer_urls: set[str]               # <SERVICE>_URL, when url_var builds them

    def allowed(self, service: str) -> set[str]:
        """Names `service` reads."""
        names = self.shared | self.own.get(service, set()) | self.peer_urls
        for m in self.uses.get(service, set()):
            names |= self.modules[m]
        return names

    def anyone(self) -> set[str]:
        """Names at least one service reads."""
        out: set[str] = set()
        for s in self.services:
            out |= self.allowed(s)
        return out


def readme_ports(repo: Path) -> dict[str, int]:
    """The service -> port table under README's "What runs"."""
    text = (repo / "README.md").read_text(encoding="utf-8")
    section = text.split("## What runs", 1)[1].split("\n## ", 1)[0]
    ports = {}
    for line in section.splitlines():
        m = README_ROW.match(line)
        if m:
            ports[m.group(1)] = int(m.group(2))
    if not ports:
        raise SystemExit("README.md: no service/port table under '## What runs'")
    return ports


def scan(repo: Path) -> CodeEnv:
    services = readme_ports(repo)
    runtime = repo / "crates" / "service-runtime" / "src"
    module_files = {m: runtime / f"{m}.rs" for m in RESOURCE_MODULES}
    shared_files = [
        p for p in sorted((repo / "crates").rglob("*.rs"))
        if "/tests/" not in p.as_posix()
        and "/test-harness/" not in p.as_posix()
        and p not in module_files.values()
    ]
    shared = _names(shared_files)
    modules = {m: _names([f]) if f.exists() else set() for m, f in module_files.items()}
    uses, own = {}, {}
    for s in services:
        src = sorted((repo / "services" / s / "src").rglob("*.rs"))
        text = "\n".join(_non_test_source(p) for p in src)
        uses[s] = {m for m in RESOURCE_MODULES if re.search(rf"\bservice_runtime::{m}\b", text)}
        own[s] = _names(src)
    config_rs = runtime / "config.rs"
    peer_urls: set[str] = set()
    if config_rs.exists() and re.search(r'fn url_var[\s\S]{0,200}format!\("\{\}_URL"', config_rs.read_text()):
        peer_urls = {f"{s.upper()}_URL" for s in services}
    return CodeEnv(services, shared, modules, uses, own, peer_urls)


if __name__ == "__main__":
    import sys
    env = scan(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
    for s, port in env.services.items():
        print(f"{s:9} {port}  uses={sorted(env.uses[s])}")
        print("          " + " ".join(sorted(env.allowed(s))))


# `web::resource("/internal/...")` then `.wrap(RequireService::allow([ServiceName::X, ...]))`
# and its `.route(web::get()...)` lines.
_GUARDED = re.compile(
    r'web::resource\(\s*"(/internal/[^"]*)"\s*\)\s*'
    r'\.wrap\(\s*RequireService::allow\(\s*\[([^\]]*)\]\s*\)\s*\)'
    r'((?:\s*\.route\(\s*web::\w+\(\)[^;]*?\)\s*\))+)',
    re.S,
)
_METHOD = re.compile(r"web::(get|post|put|patch|delete)\(\)")
_INTERNAL = re.compile(r'"(/internal/[^"]*)"')


def internal_routes(repo: Path) -> dict:
    """(service, path as Istio matches it, METHOD) -> sorted callers, from each service's
    sources; under "unguarded", every /internal path literal no RequireService guards."""
    out: dict = {"unguarded": []}
    for src in sorted((repo / "services").glob("*/src")):
        service = src.parent.name
        for path in sorted(src.rglob("*.rs")):
            text = _non_test_source(path)
            guarded = set()
            for m in _GUARDED.finditer(text):
                route, callers, chain = m.group(1), m.group(2), m.group(3)
                names = sorted(c.strip().removeprefix("ServiceName::").lower()
                               for c in callers.split(",") if c.strip())
                istio = re.sub(r"\{[^}]*\}", "{*}", route)
                for method in _METHOD.findall(chain):
                    out[(service, istio, method.upper())] = names
                guarded.add(m.start(1))
            for m in _INTERNAL.finditer(text):
                line_start = text.rfind("\n", 0, m.start()) + 1
                line = text[line_start:text.find("\n", m.end())]
                if m.start(1) in guarded or line.lstrip().startswith(("//", "#[utoipa", "///")):
                    continue
                if "web::resource" in line or ".route(" in line or "web::scope" in line:
                    out["unguarded"].append(f"{path.relative_to(repo)}: {m.group(1)} is routed without RequireService")
    return out
