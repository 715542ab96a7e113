"""Creates the virtual environment with the pinned official openai client (requirements.txt) that
the mmrun serve tests run in, or reuses it when the requirements did not change.

Usage: make_venv.py VENV_DIR REQUIREMENTS
A client that cannot be installed fails this CTest fixture, and with it the tests that need it
(they are not skipped): PyPI must be reachable, and Debian needs python3-venv (scripts/deps.sh).
"""
import hashlib
import os
import shutil
import subprocess
import sys


def main():
    target, requirements = sys.argv[1], sys.argv[2]
    python = os.path.join(target, "bin", "python")
    digest = hashlib.sha256(open(requirements, "rb").read()).hexdigest()
    stamp = os.path.join(target, "requirements.sha256")
    if os.path.exists(stamp) and os.path.exists(python) and open(stamp).read() == digest:
        print("reusing", target)
        return 0
    shutil.rmtree(target, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", target])
    if made.returncode != 0:
        sys.exit("error: %s -m venv %s failed (on Debian: apt-get install python3-venv)" % (sys.executable, target))
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--only-binary=:all:",
           "-r", requirements]
    try:
        installed = subprocess.run(pip, timeout=300)
    except subprocess.TimeoutExpired:
        sys.exit("error: pip install of the openai client took longer than 300 s")
    if installed.returncode != 0:
        sys.exit("error: the openai client could not be installed (pip exit %d); the mmrun serve tests need "
                 "PyPI (or a configured index) to reach it" % installed.returncode)
    check = subprocess.run([python, "-c", "import openai; print('openai', openai.__version__)"])
    if check.returncode != 0:
        sys.exit("error: the openai client was installed but does not import")
    with open(stamp, "w") as f:
        f.write(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
