"""Put ECharts (Apache-2.0, from the npm registry) under api/static/vendor/echarts, with its licence.

The statistics page draws its charts with it, served by the app itself: government networks are often
closed to CDNs. The tarball's SHA-512 is pinned, so a changed or tampered download is refused. Runs at
`make install`; needs only Python (no Node.js). Does nothing when the files are already there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "6.1.0"
TARBALL = f"https://registry.npmjs.org/echarts/-/echarts-{VERSION}.tgz"
INTEGRITY = "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=="
FILES = {"package/dist/echarts.min.js": "echarts.min.js", "package/LICENSE": "LICENSE", "package/NOTICE": "NOTICE"}
TARGET = Path(__file__).resolve().parent.parent / "api" / "static" / "vendor" / "echarts"


def main() -> int:
    placed = TARGET / "VERSION"
    if placed.exists() and placed.read_text().strip() == VERSION and all((TARGET / n).exists() for n in FILES.values()):
        return 0
    with urllib.request.urlopen(TARBALL, timeout=120) as response:
        data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        print(f"echarts {VERSION}: expected integrity {INTEGRITY}, got {digest}; not installed", file=sys.stderr)
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member, name in FILES.items():
            extracted = archive.extractfile(member)
            if extracted is None:
                print(f"echarts {VERSION}: {member} missing from the tarball", file=sys.stderr)
                return 1
            (TARGET / name).write_bytes(extracted.read())
    (TARGET / "VERSION").write_text(VERSION + "\n")
    print(f"echarts {VERSION} placed in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
