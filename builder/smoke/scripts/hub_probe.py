"""Waits for a server started by hub.sh to answer: GET URL until it answers, the process
PID exits, or TIMEOUT seconds pass. Prints one line; exits 0 only on an answer.

Usage: python hub_probe.py URL PID TIMEOUT
"""

import sys
import time
import urllib.error
import urllib.request

url, pid, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
t0, last = time.monotonic(), "no answer"
while time.monotonic() - t0 < limit:
    try:
        with opener.open(url, timeout=5) as resp:
            body = resp.read(200).decode(errors="replace").strip()
            print(f"GET {url} -> {resp.status} {body} in {time.monotonic() - t0:.1f} s")
            sys.exit(0)
    except urllib.error.HTTPError as exc:
        print(f"GET {url} -> HTTP {exc.code} after {time.monotonic() - t0:.1f} s")
        sys.exit(1)
    except OSError as exc:
        last = str(exc)
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    if state in ("Z", "X", "gone"):
        waited = time.monotonic() - t0
        print(f"the server exited after {waited:.1f} s without answering {url} ({last})")
        sys.exit(1)
    time.sleep(0.5)
print(f"no answer from {url} within {limit:.0f} s ({last})")
sys.exit(1)
