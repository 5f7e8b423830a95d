#!/usr/bin/env bash
# `make lock`: deploy/docker/requirements.lock, ioc's runtime dependencies (pyproject.toml) and everything
# they pull in, each at one exact version, so an image built next month installs what was tested today.
# Run it after changing the dependencies; tests/unit/test_requirements_lock.py says when it is due.
set -euo pipefail
cd "$(dirname "$0")/../.."
env=$(mktemp -d)
trap 'rm -rf "$env"' EXIT
python3 -m venv "$env"
"$env/bin/pip" install --quiet --upgrade pip
python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
  > "$env/wanted.txt"
"$env/bin/pip" install --quiet -r "$env/wanted.txt"
{
  echo "# ioc's runtime dependencies at the versions the image installs; written by \`make lock\`"
  echo "# (deploy/docker/lock-requirements.sh) from pyproject.toml with Python $(python3 -c 'import platform; print(platform.python_version())')."
  "$env/bin/pip" freeze
} > deploy/docker/requirements.lock
echo "deploy/docker/requirements.lock: $(grep -vc '^#' deploy/docker/requirements.lock) packages"
