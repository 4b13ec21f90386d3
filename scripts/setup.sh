#!/usr/bin/env bash
# Set up napari-neurorestore on a fresh Debian/Ubuntu machine (or any machine with Python >= 3.10):
# system libraries for a (virtual) display, torch, and the plugin with its test extras.
# Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends xvfb xauth libgl1-mesa-dri libegl1 \
      libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
      libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 \
      libdbus-1-3 libfontconfig1 >/dev/null
  fi
fi

# torch: keep an existing install; otherwise prefer the 2.13.0 build this project is tested with.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q "torch==2.13.0" || "$PY" -m pip install -q torch
fi
"$PY" -m pip install -q -e ".[testing]"
echo "napari-neurorestore is installed: try 'neurorestore demo' or 'neurorestore gui'"
