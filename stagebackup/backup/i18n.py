"""Translation helpers: a job's stored error in the page's language, and the Babel extractor for the stage
labels in ``stages.FLOWS`` (the seeds' Chinese, used as message ids).

``stages.py`` keeps plain strings (it is shared with the API and the CLI); templates translate them with
``_(step.label)``. This extractor puts them in the catalog without a second copy of the labels.
"""

from __future__ import annotations

import ast

from flask_babel import gettext

from ..errors import translate
from ..models import Job


def job_error(job: Job) -> str:
    """The job's error in the page's language (its template and values, errors.py), else its English message."""
    if job.error_template:
        translated = translate(gettext, job.error_template, job.error_values)
        if translated:
            return translated
    return job.error_message or ""


def extract_stage_labels(fileobj, keywords, comment_tags, options):
    """Yield ``(lineno, funcname, message, comments)`` for each (code, label) pair in ``FLOWS``."""
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if not (isinstance(target, ast.Name) and target.id == "FLOWS"):
            continue
        for pair in ast.walk(node.value):
            if (isinstance(pair, ast.Tuple) and len(pair.elts) == 2
                    and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in pair.elts)):
                yield pair.lineno, None, pair.elts[1].value, [f"stage {pair.elts[0].value}"]
