"""`relieve device heat` killed with SIGTERM turns the output off before it exits."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

RELIEVE = str(Path(sys.executable).parent / "relieve")
CONTRAST_PAD = "C0:DE:00:00:00:01"


def test_sigterm_turns_the_pad_off_and_says_so() -> None:
    proc = subprocess.Popen(
        [RELIEVE, "device", "heat", CONTRAST_PAD, "--celsius", "40", "--for", "10m", "--simulate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "Heating ... for 10:00 ..." once the pad is on
    assert first.startswith("Heating relieve Contrast Pad")
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert f"Stopped: relieve Contrast Pad ({CONTRAST_PAD}) is OFF." in out
    assert err.strip().splitlines()[-1] == "relieve: terminated."
    assert "Traceback" not in err
