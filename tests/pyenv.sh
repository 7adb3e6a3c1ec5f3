#!/usr/bin/env bash
# A virtualenv with the pinned client libraries of a test, kept between runs under
# ~/.cache/footfall-py/NAME and remade when REQUIREMENTS changes. Prints its python.
# Used by .ci/run (which installs every test's clients up front) and by the tests themselves.
# Usage: bash tests/pyenv.sh NAME REQUIREMENTS_FILE
set -euo pipefail
name="$1"; req="$2"
venv="$HOME/.cache/footfall-py/$name"
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q -r "$req" >&2
  cp "$req" "$venv/requirements.txt"
fi
echo "$venv/bin/python"
