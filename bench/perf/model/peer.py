"""The peer benchmark child: mmseg PSPNet on PyTorch (perf/peers/mmseg_forward.py) run by the parity
venv's interpreter, one timed forward pass per request over a pipe, so `bench perf model --peer mmseg` can
interleave its passes with ours."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from bench.common.paths import PROJECT_ROOT
from bench.perf.timing import RunnerUnavailable, Timing
from data.errors import UserError

PARITY_PYTHON = PROJECT_ROOT / ".venv-parity" / "bin" / "python"
PEER_SCRIPT = Path(__file__).parents[1] / "peers" / "mmseg_forward.py"


class PeerProcess:
    """The peer benchmark child (perf/peers/mmseg_forward.py in the parity venv), one forward a request."""

    def __init__(
        self, python: str, size: tuple[int, int], batch: int, threads: int, *, script: Path = PEER_SCRIPT
    ) -> None:
        """`script`: the child (peers/mmseg_forward.py: forward passes; peers/mmseg_train.py: steps)."""
        if not Path(python).is_file():
            raise UserError(
                f"the peer needs the parity venv's interpreter {python}, which does not exist: run "
                f"`make venv-parity` (torch CPU + mmsegmentation), or pass --peer-python"
            )
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.script = Path(script)
        command = [python, str(self.script), "--size", f"{size[0]}x{size[1]}", "--batch", str(batch)]
        command += ["--threads", str(threads)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self.facts = self._reply("ready")

    def _reply(self, key: str) -> dict:
        for line in self.process.stdout:
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                continue  # a library printing to stdout
            if isinstance(reply, dict) and key in reply:
                return reply
        self._stderr.seek(0)
        tail = "".join(self._stderr.readlines()[-15:])
        raise UserError(f"the peer benchmark {self.script.name} stopped without an answer:\n{tail}")

    def timing(self, precision: str) -> Timing:
        """One forward pass by the child's own clocks (no pipe round trip in them)."""
        self.process.stdin.write(precision + "\n")
        self.process.stdin.flush()
        reply = self._reply("precision")
        if "seconds" not in reply:
            raise RunnerUnavailable(str(reply.get("error", "no answer")))
        return Timing(float(reply["seconds"]), float(reply["cpu_seconds"]))

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self._stderr.close()
