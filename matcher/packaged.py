"""Files shipped inside the packages (dictionaries, demo lists, default models, templates, migrations).

Read through importlib.resources, so a wheel installed anywhere finds them as a checkout does;
the folders `data/` and `models/` are installed as the packages duijie_data and duijie_models.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def packaged(package: str, *parts: str) -> Path:
    """The path of a folder or file inside an installed package (packages install as plain folders)."""
    where = resources.files(package)
    for part in parts:
        where = where / part
    return Path(str(where))
