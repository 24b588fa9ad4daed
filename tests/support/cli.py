"""Running the `ruta` command against a test database."""

from __future__ import annotations

import os
import subprocess
import sys

from service.core.settings import Settings
from tests.support.databases import settings_env


def ruta(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env={**os.environ, **settings_env(settings)},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
