"""Stage 5: smoke. Runs a distribution's sample notebooks, imports and hub checks inside its
built images, one platform per image, and writes ``build/smoke/NAME/``:

- ``junit.xml``: one testcase per platform and check, for CI;
- ``summary.md``: per platform, per notebook, pass or fail and duration; for a failure the
  failing cell's source and the end of its traceback;
- ``results.json`` (``builder.records.SmokeResults``): per platform pass/fail, durations,
  image and lock hash (``publish`` refuses images that are not recorded here as passed);
- ``outputs/PLATFORM/...``: the executed notebooks and the logs of every run.

Every check runs in a container of its own (``docker run --rm``, ``--network none`` unless
a notebook opts in, the image's entrypoint so ``start`` runs first), so checks run in
parallel and a hanging one is killed without touching the others. Notebooks execute in the
image's own Jupyter (``jupyter nbconvert --execute``) with the kernel their metadata names.

Modules, in the order a run uses them: ``targets`` (which image per platform),
``containers`` (``docker run`` and the start-up slots), ``probe``, ``notebooks``,
``imports`` and ``hub`` (the checks; what runs inside images is in ``scripts/``),
``report`` (the result files), ``stage`` (the run itself), ``merge`` (CI's per-platform
results joined); ``results`` holds the checks and the report they share in memory.
"""

from builder.smoke.containers import RUN_LABEL, Containers
from builder.smoke.hub import HUB_CHECKS, run_hub_checks
from builder.smoke.imports import run_imports
from builder.smoke.merge import merge_results
from builder.smoke.notebooks import NotebookJob, explain_failure, run_notebook
from builder.smoke.report import junit_xml, results_record, summary_markdown
from builder.smoke.results import Check, SmokeReport, Target, clean, last_line, one_line
from builder.smoke.stage import smoke
from builder.smoke.targets import resolve_targets

__all__ = [
    "HUB_CHECKS",
    "RUN_LABEL",
    "Check",
    "Containers",
    "NotebookJob",
    "SmokeReport",
    "Target",
    "clean",
    "explain_failure",
    "junit_xml",
    "last_line",
    "merge_results",
    "one_line",
    "resolve_targets",
    "results_record",
    "run_hub_checks",
    "run_imports",
    "run_notebook",
    "smoke",
    "summary_markdown",
]
