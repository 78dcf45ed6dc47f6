"""Imports each module named in argv[1] (a JSON list) in this one process, timed one by
one, with the image's Python. Prints "@@importing NAME" before each, then one line
"@@imports {python, version, results}".

Usage: python imports.py '["numpy", "xarray"]'
"""

import importlib
import json
import sys
import time
import traceback

results = []
for name in json.loads(sys.argv[1]):
    print("@@importing " + name, flush=True)
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(name)
    except BaseException as exc:
        line = traceback.format_exception_only(type(exc), exc)[-1].strip()
        results.append(
            {"module": name, "ok": False, "seconds": time.perf_counter() - t0, "error": line}
        )
    else:
        version = getattr(module, "__version__", None)
        results.append(
            {
                "module": name,
                "ok": True,
                "seconds": time.perf_counter() - t0,
                "version": version if isinstance(version, str) else None,
            }
        )
report = {"python": sys.executable, "version": sys.version.split()[0], "results": results}
print("@@imports " + json.dumps(report), flush=True)
