"""The local runtime: the whole gateway on one machine, with no AWS account.

``python -m local`` (``make dev``) starts moto standing in for AWS, an AppSync-Events-compatible
server that runs the real handler code, and the web chat UI. See ``docs/local.md``.
"""

import sys
from pathlib import Path

# The functions import their shared code as top-level packages (``gateway``), as in Lambda,
# where ``functions/`` is the deployment package's root; ``settings`` lives at the repo root.
_ROOT = Path(__file__).resolve().parent.parent
for _path in (_ROOT / "functions", _ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
