#!/usr/bin/env bash
# Set up napari-neurorestore from a clone, on a fresh Debian/Ubuntu machine or any machine with
# Python >= 3.10 (system, pyenv or conda python3):
#   - system libraries for a (virtual) display, and python3-venv when `python3 -m venv` lacks it
#     (apt-get only, and only as root or with sudo);
#   - a virtual environment .venv in the clone (PEP 668: the system Python is never touched);
#   - torch in it (the CPU build by default; `--cuda` asks for a GPU build from torch's index);
#   - the plugin, editable, with its test and large-data extras: .[testing,large].
# Then run `.venv/bin/neurorestore ...` or `.venv/bin/python ...` (or `. .venv/bin/activate`).
# Idempotent: running it again reuses .venv and what is installed in it.
#
# usage: bash scripts/setup.sh [--cuda[=cu128]]
# env:   PYTHON   the interpreter that creates the venv (default: python3)
#        NEURORESTORE_VENV   where the venv goes (default: .venv in the clone)
set -euo pipefail
cd "$(dirname "$0")/.."

CUDA=""
for arg in "$@"; do
  case "$arg" in
    --cuda) CUDA=cu128 ;;
    --cuda=*) CUDA=${arg#--cuda=} ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
VENV=${NEURORESTORE_VENV:-.venv}

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "setup.sh: $PY not found; install Python >= 3.10 (apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup.sh: $("$PY" --version 2>&1) is too old; napari-neurorestore needs Python >= 3.10" >&2
  exit 1
fi

# --- system packages (Debian/Ubuntu) -----------------------------------------------------------
SUDO=""
CAN_APT=0
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    CAN_APT=1
  elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"; CAN_APT=1
  fi
fi
apt_install() {  # install the packages that are missing; skip apt entirely when none are
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup.sh: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
if [ "$CAN_APT" -eq 1 ]; then
  apt_install xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-icccm4 \
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
    libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1
fi

# --- the virtual environment -------------------------------------------------------------------
venv_ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys, pip' >/dev/null 2>&1; }
make_venv() { rm -rf "$VENV"; "$PY" -m venv "$VENV" >/dev/null 2>&1; }
if venv_ok; then
  echo "setup.sh: reusing $VENV ($("$VENV/bin/python" --version))"
else
  if ! make_venv || ! venv_ok; then
    # Debian/Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package
    if [ "$CAN_APT" -eq 1 ] && [ "$("$PY" -c 'import sys; print(sys.prefix)')" = /usr ]; then
      ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt_install python3-venv "python$ver-venv"
    fi
    if ! make_venv || ! venv_ok; then
      rm -rf "$VENV"
      echo "setup.sh: '$PY -m venv' failed; install your Python's venv module (Debian/Ubuntu:" \
           "sudo apt-get install python3-venv) and run this again" >&2
      exit 1
    fi
  fi
  echo "setup.sh: created $VENV with $("$VENV/bin/python" --version)"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install -q --disable-pip-version-check)

# --- torch -------------------------------------------------------------------------------------
# Keep the torch already in the venv (a re-run); a new venv has none. Default: 2.13.0, the
# release this project is tested with (the CPU build where it lies in a local wheel cache).
# --cuda: a CUDA build from the index https://pytorch.org/get-started/locally/ documents.
if [ -n "$CUDA" ]; then
  if [ "$("$VPY" -c 'import torch; print(torch.version.cuda is not None)' 2>/dev/null)" != True ]; then
    echo "setup.sh: installing torch with CUDA ($CUDA) from https://download.pytorch.org/whl/$CUDA"
    "${PIP[@]}" --upgrade --force-reinstall torch --index-url "https://download.pytorch.org/whl/$CUDA"
  fi
elif ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  echo "setup.sh: installing torch"
  "${PIP[@]}" "torch==2.13.0" || "${PIP[@]}" torch
fi

# --- the plugin --------------------------------------------------------------------------------
echo "setup.sh: installing napari-neurorestore[testing,large] (editable) into $VENV"
"${PIP[@]}" -e ".[testing,large]"
echo "napari-neurorestore is installed in $VENV: try '$VENV/bin/neurorestore demo' or" \
     "'$VENV/bin/neurorestore gui' (or '. $VENV/bin/activate' first)"
