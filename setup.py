"""The build step of the package: the statistics page's ECharts goes into every wheel.

ECharts is not kept in the repository; scripts/fetch_echarts.py fetches it from the npm registry and
checks its pinned SHA-512. `make install` ran it, but a wheel built from a clean clone had no charts
(the folder is ignored by git). Building now runs it first and fails loudly when it cannot.
"""

import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithCharts(build_py):
    def run(self) -> None:
        fetch = runpy.run_path(str(HERE / "scripts" / "fetch_echarts.py"))["main"]
        if fetch() != 0:
            raise SystemExit("ECharts could not be fetched and checked (see above); a wheel without it would "
                             "draw no charts on the statistics page")
        self.__dict__.pop("data_files", None)  # found before the fetch: look again, the charts included
        super().run()


setup(cmdclass={"build_py": BuildWithCharts})
