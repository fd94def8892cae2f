# Shared set-up for scripts/test, scripts/demo, scripts/bench and scripts/check.
# Sourced, not run. Creates .venv, installs the project with its dev extras, and
# makes sure a mosquitto binary exists (installing it with apt-get when we are root).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

rg_setup_venv() {
    if [ ! -x "$PY" ]; then
        echo "==> creating virtual environment in .venv"
        python3 -m venv "$VENV"
    fi
    # Re-install only when pyproject.toml changed since the last install.
    local stamp="$VENV/.installed-pyproject"
    if [ ! -f "$stamp" ] || ! cmp -s "$ROOT/pyproject.toml" "$stamp"; then
        echo "==> installing reorder-gateway and its dependencies"
        "$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
        "$PY" -m pip install --quiet -e "$ROOT[dev]"
        cp "$ROOT/pyproject.toml" "$stamp"
    fi
}

rg_setup_mosquitto() {
    if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing mosquitto (apt-get)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
        # The package enables a system-wide broker on port 1883; we never use it.
        if command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now mosquitto >/dev/null 2>&1 || true
        fi
        return 0
    fi
    echo "mosquitto is not installed. Install it, then run this again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y mosquitto" >&2
    exit 1
}

export PATH="$VENV/bin:$PATH:/usr/sbin"
