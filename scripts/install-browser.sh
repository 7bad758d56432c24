#!/usr/bin/env bash
# Debian's chromium for the report's browser test (tests/test_report.py), installed by `make test`.
# Installs with apt-get as root (or with password-less sudo). Where neither is possible it says so
# and leaves the browser test to skip; as root (CI), a failed install fails the run.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no apt-get here: install Chromium yourself for the report's browser test (it is skipped)" >&2
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "note: not root: run 'sudo apt-get install chromium' for the report's browser test (it is skipped)" >&2
  exit 0
fi
echo "installing Debian's chromium (browser test of m3cvc report)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null
