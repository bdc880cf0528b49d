"""Install Debian's chromium for the browser test if it is missing (used by `make test`)."""

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    if os.path.exists(CHROMIUM):
        return 0
    if shutil.which("apt-get") is None:
        print(f"ensure_chromium: {CHROMIUM} missing and no apt-get; browser test will fail",
              file=sys.stderr)
        return 0
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
