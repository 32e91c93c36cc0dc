"""A short run of the load-and-fault harness (bench/load.py) on the test database: two server processes, a worker,
ten virtual users for 20 seconds, one server killed with kill -9 midway; every invariant must hold afterwards."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_short_load_with_a_server_killed_keeps_every_invariant(db_url, tmp_path):
    out = tmp_path / "load.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--database-url", db_url, "--servers", "2",
                          "--users", "10", "--duration", "20", "--kill-server-every", "8", "--min-finished", "5",
                          "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "all checks passed" in run.stdout
    import json
    result = json.loads(out.read_text())
    assert result["server_kills"] >= 1
    assert sum(result["cases_finished"].values()) >= 5
    assert result["latency_ms"]["POST complete"]["n"] >= 25
    assert not [k for k in result["errors"] if k.startswith(("HTTP 5", "harness error", "task not open"))], result["errors"]
