"""What both SDK benches need: an engine process on a config, and CPU time of a process."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def start_engine(tmp: Path, config: str, build: str) -> tuple[subprocess.Popen[bytes], str]:
    """Starts ``$SWITCHYARD_BIN`` (else ``target/<build>/switchyard``) on ``config`` in
    ``tmp``; returns the process and its URL."""
    binary = os.environ.get("SWITCHYARD_BIN") or str(REPO_ROOT / "target" / build / "switchyard")
    cfg = tmp / "iii-config.yaml"
    cfg.write_text(config)
    proc = subprocess.Popen([binary, "serve", "--config", str(cfg), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=open(tmp / "engine.log", "wb"))
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"engine did not start: {line!r}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, f"http://{match.group(1)}"


def cpu_seconds(pid: int | None) -> float:
    """User+system CPU time of a process so far (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
