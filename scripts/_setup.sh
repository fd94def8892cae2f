# Shared set-up for scripts/test, scripts/demo, scripts/bench and scripts/check.
# Sourced, not run. Creates .venv, installs the project with its dev extras, and
# makes sure a mosquitto binary exists (installing it with apt-get when we are root);
# the demo also asks for the mosquitto-clients tools it suggests.
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

# mosquitto_pub and mosquitto_sub: the demo ends by suggesting a press with
# mosquitto_pub, and the README's troubleshooting watches topics with mosquitto_sub.
# Debian ships them apart from the broker, in mosquitto-clients. Nothing here needs
# them to run, so a machine without them only gets the command to install them.
rg_setup_mosquitto_clients() {
    if command -v mosquitto_pub >/dev/null 2>&1 && command -v mosquitto_sub >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing mosquitto-clients (apt-get): mosquitto_pub, mosquitto_sub"
        apt-get update -qq >/dev/null
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients >/dev/null; then
            return 0
        fi
    fi
    echo "note: mosquitto_pub/mosquitto_sub are not installed; to press buttons yourself:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y mosquitto-clients" >&2
}

# Debian's Chromium for the web page's browser tests (tests/web), driven by Playwright
# for Python (a dev dependency); Playwright's own browser downloads are never used.
# The tests find it at RG_CHROMIUM (default /usr/bin/chromium) and fail without it.
rg_setup_chromium() {
    if [ -x "${RG_CHROMIUM:-/usr/bin/chromium}" ]; then
        export RG_CHROMIUM="${RG_CHROMIUM:-/usr/bin/chromium}"
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing chromium (apt-get) for the web page's browser tests"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        export RG_CHROMIUM=/usr/bin/chromium
        return 0
    fi
    echo "chromium is not installed (the web page's browser tests need it):" >&2
    echo "    sudo apt-get update && sudo apt-get install -y chromium" >&2
    exit 1
}

# The Vendure test bed (firmware_sim/vendure): Node/npm from Debian when missing, then
# the pinned npm packages into a cache outside the clone, once per version. Tests and
# the demo find it through RG_VENDURE_MODULES.
RG_VENDURE_VERSION=3.7.3
rg_setup_vendure() {
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/reorder-gateway/vendure-$RG_VENDURE_VERSION"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            echo "==> installing nodejs and npm (apt-get) for the Vendure test bed"
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
        else
            echo "node and npm are needed for the Vendure tests: sudo apt-get install -y nodejs npm" >&2
            exit 1
        fi
    fi
    if [ ! -f "$cache/.installed" ] || ! cmp -s "$ROOT/firmware_sim/vendure/package-lock.json" "$cache/package-lock.json"; then
        echo "==> installing Vendure $RG_VENDURE_VERSION into $cache (first time: about 2 minutes)"
        mkdir -p "$cache"
        cp "$ROOT/firmware_sim/vendure/package.json" "$ROOT/firmware_sim/vendure/package-lock.json" "$cache/"
        (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error)
        touch "$cache/.installed"
    fi
    export RG_VENDURE_MODULES="$cache/node_modules"
}

# A real Home Assistant for the tests of the MQTT discovery and of the
# home_assistant shop backend. 2024.3.x is the newest release that runs on
# Python 3.11. It gets its own venv, cached outside the clone so a fresh clone
# on the same machine reuses it, and is installed with Home Assistant's own
# package_constraints.txt (shipped inside the wheel) as pip constraints, the
# way its container image is built. The integrations the tests load (mqtt,
# onboarding -> person -> image_upload, file_upload, analytics, hardware, backup,
# frontend: without it Home Assistant starts in recovery mode) have requirements that
# Home Assistant would otherwise pip-install at start-up: they are installed
# here so a test never waits for a download.
RG_HA_VERSION="2024.3.3"
RG_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/reorder-gateway"
RG_HA_VENV="$RG_CACHE/homeassistant-$RG_HA_VERSION"
export RG_HA_HASS="$RG_HA_VENV/bin/hass"

rg_setup_homeassistant() {
    if [ -x "$RG_HA_HASS" ] && [ -f "$RG_HA_VENV/.installed" ]; then
        return 0
    fi
    echo "==> installing Home Assistant $RG_HA_VERSION into $RG_HA_VENV (first time only)"
    local started=$SECONDS
    rm -rf "$RG_HA_VENV"
    mkdir -p "$RG_CACHE"
    python3 -m venv "$RG_HA_VENV"
    local hapy="$RG_HA_VENV/bin/python"
    "$hapy" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    local wheels
    wheels="$(mktemp -d)"
    "$hapy" -m pip download --quiet --no-deps "homeassistant==$RG_HA_VERSION" -d "$wheels"
    "$hapy" - "$wheels" <<'PY'
import pathlib, sys, zipfile
folder = pathlib.Path(sys.argv[1])
wheel = next(folder.glob("homeassistant-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    text = archive.read("homeassistant/package_constraints.txt")
(folder / "constraints.txt").write_bytes(text)
PY
    "$hapy" -m pip install --quiet -c "$wheels/constraints.txt" \
        "homeassistant==$RG_HA_VERSION" 'josepy<2' \
        paho-mqtt==1.6.1 janus==1.0.0 Pillow==10.2.0 psutil-home-assistant==0.0.1 \
        securetar==2024.2.1 home-assistant-frontend==20240307.0 SQLAlchemy==2.0.27 \
        fnv-hash-fast==0.5.0
    rm -rf "$wheels"
    touch "$RG_HA_VENV/.installed"
    echo "==> Home Assistant $RG_HA_VERSION installed in $((SECONDS - started)) s"
}

export PATH="$VENV/bin:$PATH:/usr/sbin"
