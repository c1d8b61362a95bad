"""Run pip-audit on the installed environment and decide what its result means for CI.

- A reported vulnerability fails the build (exit 1), listing package, version, advisory, fix.
- pip-audit needs a vulnerability service on the network (PyPI's per-version JSON API, or
  OSV). When it cannot reach one — no report written, or every dependency skipped as "not
  found" (a PyPI mirror that serves only the simple index and latest-version JSON) — this
  says loudly that the environment was NOT audited and does not fail the build, unless
  BILLBYTE_AUDIT_STRICT=1 (for CI machines with internet access).

Usage: python .ci/pip_audit_gate.py PATH/TO/pip-audit
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def main(pip_audit: str) -> int:
    strict = os.environ.get("BILLBYTE_AUDIT_STRICT") == "1"
    with tempfile.TemporaryDirectory() as folder:
        report_path = Path(folder) / "audit.json"
        run = subprocess.run(
            [
                pip_audit,
                "--skip-editable",  # billbyte itself is not on PyPI
                "--progress-spinner",
                "off",
                "--timeout",
                "15",
                "--format",
                "json",
                "--output",
                str(report_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        report: dict[str, Any] | None = None
        if report_path.exists() and report_path.stat().st_size:
            report = json.loads(report_path.read_text())
    if report is None:
        last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        return not_audited(f"pip-audit produced no report (exit {run.returncode}): {last}", strict)

    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    if vulnerable:
        print("pip-audit: KNOWN VULNERABILITIES in the installed environment:", file=sys.stderr)
        for dependency in vulnerable:
            for vuln in dependency["vulns"]:
                fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
                print(
                    f"  {dependency['name']} {dependency.get('version', '?')}: {vuln['id']} "
                    f"(fixed in: {fixes})",
                    file=sys.stderr,
                )
        return 1
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = len(dependencies) - len(skipped)
    if dependencies and audited == 0:
        return not_audited(
            f"the vulnerability service knew none of the {len(dependencies)} installed "
            f"dependencies (e.g. {skipped[0]['skip_reason']!r}); it is unreachable or this "
            "index has no per-version JSON API",
            strict,
        )
    print(
        f"pip-audit: {audited} dependencies audited, no known vulnerabilities"
        + (f" ({len(skipped)} could not be audited)" if skipped else "")
    )
    return 0


def not_audited(reason: str, strict: bool) -> int:
    print(
        f"pip-audit: WARNING: the environment was NOT audited: {reason}.",
        file=sys.stderr,
    )
    if strict:
        print("pip-audit: BILLBYTE_AUDIT_STRICT=1, so this fails the build.", file=sys.stderr)
        return 1
    print(
        "pip-audit: not failing the build for an unreachable service "
        "(set BILLBYTE_AUDIT_STRICT=1 to make it fail).",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
