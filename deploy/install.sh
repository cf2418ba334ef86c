#!/usr/bin/env bash
# Install bess-edge on a Debian/Ubuntu box (x86-64 or arm64): a virtualenv under /opt, the config under
# /etc, the systemd units and the service user. Idempotent: a second run changes nothing and says so.
# Never overwrites an operator's config. See docs/install.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/install.sh [options]

  --prefix DIR     install root for the virtualenv and docs (default /opt/bess-edge)
  --etc DIR        config directory (default /etc/bess-edge)
  --destdir DIR    stage everything under DIR (packaging, tests): no user, no chown, no systemctl.
                   A virtualenv built there embeds the staged path; combine with --no-venv unless
                   DIR is the root of the target system (a chroot).
  --python PATH    Python >= 3.11 for the virtualenv (default python3)
  --wheels DIR     install torch only from this directory of wheels (other packages are looked up
                   there first, then on pip's configured index)
  --torch-index URL  install torch only from this pip index (a CPU-only torch index or a mirror of
                   one); without --wheels or --torch-index, torch comes from pip's configured index.
                   Either way the install stops if the torch it got is a CUDA build.
  --no-venv        skip the virtualenv (you provide PREFIX/venv yourself)
  --dry-run        print what would be done, change nothing
  --uninstall      stop and remove the units, the virtualenv and the docs; keep config and state
  --purge          with --uninstall: also remove config, credentials, state, cache and the user
  -h, --help       this text
EOF
}

PREFIX=/opt/bess-edge
ETC=/etc/bess-edge
DESTDIR=""
PYTHON=python3
WHEELS=""
TORCH_INDEX=""
NO_VENV=0
DRY_RUN=0
UNINSTALL=0
PURGE=0

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --etc) ETC="${2:?--etc needs a directory}"; shift 2 ;;
        --destdir) DESTDIR="${2:?--destdir needs a directory}"; shift 2 ;;
        --python) PYTHON="${2:?--python needs a path}"; shift 2 ;;
        --wheels) WHEELS="${2:?--wheels needs a directory}"; shift 2 ;;
        --torch-index) TORCH_INDEX="${2:?--torch-index needs a URL}"; shift 2 ;;
        --no-venv) NO_VENV=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

for dir in "$PREFIX" "$ETC"; do
    case "$dir" in
        /?*) ;;
        *) echo "install.sh: --prefix and --etc must be absolute paths other than /, got '$dir'" >&2; exit 2 ;;
    esac
done
if [ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ]; then
    echo "install.sh: --purge only goes with --uninstall" >&2; exit 2
fi
if [ -n "$DESTDIR" ]; then
    DESTDIR="$(realpath -m "$DESTDIR")"
    [ "$DESTDIR" != / ] || DESTDIR=""
fi
if [ -n "$WHEELS" ]; then
    [ -d "$WHEELS" ] || { echo "install.sh: --wheels: no such directory: $WHEELS" >&2; exit 2; }
    WHEELS="$(realpath "$WHEELS")"
fi

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CPU_TORCH_CHECK='import sys, torch; sys.exit(1 if torch.version.cuda else 0)'
SERVICE_USER=bess-edge
STATE_DIR=/var/lib/bess-edge
CACHE_DIR=/var/cache/bess-edge
UNITS=(bess-collector bess-forecaster bess-finetune)
COMMANDS=(bess-collector bess-forecaster)
# The torch pin lives in pyproject.toml; read it so the two never drift apart.
TORCH_VERSION="$(sed -n 's/.*"torch==\([^"]*\)".*/\1/p' "$SRC/pyproject.toml" | head -n 1)"
if [ -z "$TORCH_VERSION" ]; then
    echo "install.sh: no torch==<version> pin found in $SRC/pyproject.toml" >&2
    exit 1
fi

D_PREFIX="$DESTDIR$PREFIX"
D_ETC="$DESTDIR$ETC"
D_UNITS="$DESTDIR/etc/systemd/system"
D_BIN="$DESTDIR/usr/local/bin"
VENV="$D_PREFIX/venv"

CHANGED=0
UNITS_CHANGED=0
CHANGED_UNITS=()   # units whose file changed: only these (or all, after new code) are restarted
VENV_CHANGED=0
IS_ROOT=0
if [ "$(id -u)" = 0 ]; then IS_ROOT=1; fi
# Only a real install on a booted systemd host touches users, ownership and the service manager.
LIVE=0
if [ -z "$DESTDIR" ] && [ "$IS_ROOT" = 1 ]; then LIVE=1; fi
SYSTEMD=0
if [ "$LIVE" = 1 ] && [ -d /run/systemd/system ]; then SYSTEMD=1; fi

say() {
    if [ "$DRY_RUN" = 1 ]; then echo "install.sh: (dry run) $*"; else echo "install.sh: $*"; fi
}

run() {
    # Run a command that changes something, or only show it under --dry-run.
    if [ "$DRY_RUN" = 1 ]; then
        say "would run: $*"
    else
        "$@"
    fi
}

install_file() {
    # install_file SOURCE DEST MODE: copy when the content differs; report either way.
    local source="$1" dest="$2" mode="$3"
    if [ -f "$dest" ] && cmp -s "$source" "$dest"; then
        say "unchanged: $dest"
        return 1
    fi
    run install -D -m "$mode" "$source" "$dest"
    say "installed: $dest"
    CHANGED=1
    return 0
}

ensure_dir() {
    # ensure_dir DIR MODE [GROUP]: create or fix the mode (and group on a live install).
    local dir="$1" mode="$2" group="${3:-}"
    local want_group="$group"
    if [ -d "$dir" ] && [ "$(stat -c %a "$dir")" = "${mode#0}" ] \
        && { [ -z "$want_group" ] || [ "$LIVE" = 0 ] || [ "$(stat -c %G "$dir")" = "$want_group" ]; }; then
        say "unchanged: $dir/"
        return
    fi
    run mkdir -p "$dir"
    run chmod "$mode" "$dir"
    if [ -n "$group" ] && [ "$LIVE" = 1 ]; then
        run chgrp "$group" "$dir"
    fi
    if [ "$LIVE" = 1 ] && [ -n "$group" ]; then say "created: $dir/ (mode $mode, group $group)"; else say "created: $dir/ (mode $mode)"; fi
    CHANGED=1
}

render_unit() {
    # The shipped units name /opt/bess-edge and /etc/bess-edge; rewrite them for other locations.
    sed -e "s#/opt/bess-edge#$PREFIX#g" -e "s#/etc/bess-edge#$ETC#g" "$SRC/systemd/$1.service"
}

source_digest() {
    # What the virtualenv is built from: a change here means pip must run again.
    {
        echo "python=$("$PYTHON" -c 'import sys; print(sys.version)')"
        echo "torch=$TORCH_VERSION wheels=$WHEELS torch_index=$TORCH_INDEX"
        cd "$SRC" && find pyproject.toml requirements.lock bess_common collector forecaster -type f \
            \( -name '*.py' -o -name '*.csv' -o -name '*.toml' -o -name '*.lock' -o -name '*.json' \) \
            -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------------------------------------- install

install_user() {
    if [ -n "$DESTDIR" ]; then
        say "skipped: creating user $SERVICE_USER (--destdir); on the target run:" \
            "useradd --system --user-group --home-dir $STATE_DIR --no-create-home --shell /usr/sbin/nologin $SERVICE_USER"
    elif [ "$IS_ROOT" = 0 ]; then
        say "skipped: creating user $SERVICE_USER (not root)"
    elif getent passwd "$SERVICE_USER" >/dev/null; then
        say "unchanged: user $SERVICE_USER"
    else
        run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "bess-edge services" "$SERVICE_USER"
        say "created: system user $SERVICE_USER (home $STATE_DIR, no login)"
        CHANGED=1
    fi
}

install_config() {
    ensure_dir "$D_ETC" 0750 "$SERVICE_USER"
    ensure_dir "$D_ETC/credentials" 0700
    if [ -e "$D_ETC/config.toml" ]; then
        say "kept: $D_ETC/config.toml (an existing config is never overwritten;" \
            "compare with $PREFIX/share/config.example.toml after upgrades)"
    else
        run install -m 0640 "$SRC/deploy/config.example.toml" "$D_ETC/config.toml"
        if [ "$LIVE" = 1 ]; then run chgrp "$SERVICE_USER" "$D_ETC/config.toml"; fi
        say "installed: $D_ETC/config.toml (from config.example.toml; edit it before starting)"
        CHANGED=1
        NEW_CONFIG=1
    fi
}

install_units() {
    local unit rendered
    rendered="$(mktemp)"
    for unit in "${UNITS[@]}"; do
        render_unit "$unit" >"$rendered"
        if install_file "$rendered" "$D_UNITS/$unit.service" 0644; then
            UNITS_CHANGED=1
            CHANGED_UNITS+=("$unit")
        fi
    done
    rm -f "$rendered"
}

install_docs() {
    local doc
    for doc in "$SRC"/docs/*.md; do
        install_file "$doc" "$D_PREFIX/share/docs/$(basename "$doc")" 0644 || true
    done
    install_file "$SRC/deploy/config.example.toml" "$D_PREFIX/share/config.example.toml" 0644 || true
}

pip_install_all() {
    # Called in a condition, where `set -e` does not apply: every step returns on failure itself.
    local pip="$VENV/bin/pip"
    local find_links=()
    if [ -n "$WHEELS" ]; then find_links=(--find-links "$WHEELS"); fi
    if [ -z "$WHEELS" ]; then
        run "$pip" install --quiet --upgrade pip || return 1
    fi
    # torch first, on its own and without dependencies (those are pinned in requirements.lock, which then
    # finds torch already satisfied): from the local wheels only, or from the given index only, or from
    # pip's configured index. Then prove it is the CPU build: a CUDA torch would pull several GB of
    # nvidia-* packages that a box without an NVIDIA GPU cannot use.
    if [ -n "$WHEELS" ]; then
        run "$pip" install --quiet --no-deps --no-index --find-links "$WHEELS" "torch==$TORCH_VERSION" || return 1
    elif [ -n "$TORCH_INDEX" ]; then
        run "$pip" install --quiet --no-deps --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION" || return 1
    else
        run "$pip" install --quiet --no-deps "torch==$TORCH_VERSION" || return 1
    fi
    if ! run "$VENV/bin/python" -c "$CPU_TORCH_CHECK"; then
        echo "install.sh: the torch pip installed is not the CPU-only build (or does not import). Pass" \
            "--torch-index with a CPU-only torch index, or --wheels DIR (docs/install.md, 'CPU-only torch')." >&2
        return 1
    fi
    run "$pip" install --quiet "${find_links[@]}" -r "$SRC/requirements.lock" || return 1
    run "$pip" install --quiet "${find_links[@]}" --no-deps --force-reinstall "$SRC" || return 1
}

has_libgomp() {
    # The OS's OpenMP runtime, which LightGBM (the forecaster's gradient-boosting model) loads.
    # The whole cache is read first: `ldconfig -p | grep -q` fails under pipefail when grep stops early.
    local ldconfig cache
    ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
    cache="$("$ldconfig" -p 2>/dev/null || true)"
    grep -q 'libgomp\.so\.1 ' <<<"$cache"
}

install_os_libs() {
    # Before anything else changes: a live install (root, no --destdir) installs libgomp1 with apt;
    # otherwise a missing one stops the install with the command that fixes it.
    if [ "$NO_VENV" = 1 ]; then
        say "skipped: checking libgomp1 (--no-venv); the forecaster's virtualenv needs it (apt install libgomp1)"
        return
    fi
    if has_libgomp; then
        say "unchanged: libgomp1 (OpenMP runtime for LightGBM)"
        return
    fi
    if [ "$LIVE" = 1 ] && command -v apt-get >/dev/null; then
        say "installing OS package libgomp1 (OpenMP runtime for LightGBM)"
        if ! { run apt-get update -qq && DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq \
            --no-install-recommends libgomp1; }; then
            echo "install.sh: apt-get could not install libgomp1 (LightGBM's OpenMP runtime); install it" \
                "by hand (apt install libgomp1) and run install.sh again." >&2
            exit 1
        fi
        CHANGED=1
        return
    fi
    echo "install.sh: the OS's OpenMP runtime libgomp.so.1 is missing (ldconfig does not list it); the" \
        "forecaster's gradient-boosting model (LightGBM) cannot load without it. Install it as root:" \
        "apt install libgomp1 (or run install.sh as root, which does), then run install.sh again." >&2
    exit 1
}

install_venv() {
    if [ "$NO_VENV" = 1 ]; then
        say "skipped: virtualenv (--no-venv); the units expect $PREFIX/venv/bin/bess-collector"
        return
    fi
    if ! "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "install.sh: $PYTHON is not Python >= 3.11 with venv/ensurepip" \
            "(Debian/Ubuntu: apt install python3.11-venv, or pass --python)" >&2
        exit 1
    fi
    local digest stamp="$VENV/.bess-edge-source"
    digest="$(source_digest)"
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then
        say "unchanged: $VENV (built from this source)"
    else
        if [ ! -x "$VENV/bin/python" ]; then
            run "$PYTHON" -m venv "$VENV"
            say "created: $VENV"
        fi
        say "installing packages into $VENV (CPU-only torch $TORCH_VERSION; this takes a few minutes)"
        if ! pip_install_all; then
            echo "install.sh: pip failed; the virtualenv is incomplete. Fix the cause (network, --wheels)" \
                "and run install.sh again." >&2
            exit 1
        fi
        if [ "$DRY_RUN" = 0 ]; then echo "$digest" >"$stamp"; fi
        say "installed: bess-edge into $VENV"
        CHANGED=1
        VENV_CHANGED=1
    fi
    local cmd
    for cmd in "${COMMANDS[@]}"; do
        if [ "$(readlink "$D_BIN/$cmd" 2>/dev/null)" = "$PREFIX/venv/bin/$cmd" ]; then
            say "unchanged: $D_BIN/$cmd"
        else
            run mkdir -p "$D_BIN"
            run ln -sfn "$PREFIX/venv/bin/$cmd" "$D_BIN/$cmd"
            say "linked: $D_BIN/$cmd -> $PREFIX/venv/bin/$cmd"
            CHANGED=1
        fi
    done
}

reload_systemd() {
    if [ "$SYSTEMD" = 0 ]; then
        if [ "$UNITS_CHANGED" = 1 ]; then
            say "skipped: systemctl daemon-reload (no running systemd, not root, or --destdir)"
        fi
        return 0
    fi
    if [ "$UNITS_CHANGED" = 1 ]; then
        run systemctl daemon-reload
        say "reloaded: systemd unit files"
    fi
    # Restart a running service only for new code or its own new unit file (never for docs or
    # config: every restart costs the collector a few seconds of samples).
    local unit
    for unit in bess-collector bess-forecaster; do
        if { [ "$VENV_CHANGED" = 1 ] || [[ " ${CHANGED_UNITS[*]} " == *" $unit "* ]]; } \
            && systemctl is-active --quiet "$unit"; then
            run systemctl restart "$unit"
            say "restarted: $unit (new code or unit file)"
        fi
    done
}

next_steps() {
    cat <<EOF
install.sh: next steps:
  1. edit $ETC/config.toml (GX address, InfluxDB URL; docs: $PREFIX/share/docs/configuration.md)
  2. secrets, if your site needs them (root-only files, read by systemd as credentials):
       install -m 0600 /dev/stdin $ETC/credentials/influx_token  <<<'...'
     (also influx_password, mqtt_password)
  3. find the GX unit ids:  sudo bess-collector discover --config $ETC/config.toml
  4. check:  sudo bess-collector check-config --config $ETC/config.toml
             sudo bess-forecaster check-config --config $ETC/config.toml
  5. start:  sudo systemctl enable --now bess-collector bess-forecaster
EOF
}

do_install() {
    NEW_CONFIG=0
    if [ ! -f "$SRC/deploy/config.example.toml" ]; then
        echo "install.sh: $SRC is not a bess-edge source tree" >&2
        exit 1
    fi
    install_os_libs
    install_user
    install_config
    install_units
    install_docs
    install_venv
    reload_systemd
    if [ "$CHANGED" = 0 ]; then
        say "nothing to do: already installed and up to date"
    else
        say "done${DESTDIR:+ (staged under $DESTDIR)}"
    fi
    if [ "$NEW_CONFIG" = 1 ]; then next_steps; fi
    return 0
}

# -------------------------------------------------------------------------------------------- uninstall

remove_path() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        run rm -rf -- "$1"
        say "removed: $1"
        CHANGED=1
    fi
}

do_uninstall() {
    local unit cmd
    if [ "$SYSTEMD" = 1 ]; then
        for unit in "${UNITS[@]}"; do
            if systemctl cat "$unit" >/dev/null 2>&1; then
                run systemctl disable --now "$unit" || true
                say "stopped and disabled: $unit"
            fi
        done
    fi
    for unit in "${UNITS[@]}"; do
        remove_path "$D_UNITS/$unit.service"
    done
    for cmd in "${COMMANDS[@]}"; do
        # Only our own links.
        if [ "$(readlink "$D_BIN/$cmd" 2>/dev/null)" = "$PREFIX/venv/bin/$cmd" ]; then
            remove_path "$D_BIN/$cmd"
        fi
    done
    remove_path "$VENV"
    remove_path "$D_PREFIX/share"
    if [ -d "$D_PREFIX" ] && [ -z "$(ls -A "$D_PREFIX")" ]; then
        run rmdir "$D_PREFIX"
        say "removed: $D_PREFIX/"
    fi
    if [ "$SYSTEMD" = 1 ] && [ "$CHANGED" = 1 ]; then run systemctl daemon-reload; fi
    if [ "$PURGE" = 1 ]; then
        for unit in "${UNITS[@]}"; do
            remove_path "$D_UNITS/$unit.service.d"  # drop-ins from `systemctl edit`
        done
        remove_path "$D_ETC"
        remove_path "$DESTDIR$STATE_DIR"
        remove_path "$DESTDIR$CACHE_DIR"
        if [ "$LIVE" = 1 ] && getent passwd "$SERVICE_USER" >/dev/null; then
            run userdel "$SERVICE_USER"
            say "removed: user $SERVICE_USER"
            CHANGED=1
        fi
    else
        say "kept: config $D_ETC and state $DESTDIR$STATE_DIR (add --purge to remove them)"
    fi
    if [ "$CHANGED" = 0 ]; then
        say "nothing to do: not installed"
    else
        say "uninstalled"
    fi
}

main() {
    if [ "$UNINSTALL" = 1 ]; then do_uninstall; else do_install; fi
}

# One line, read before it runs: bash reads a script as it goes, so if the file is replaced while pip
# runs (e.g. a `git pull` in the checkout), nothing after this line is ever read.
main; exit $?
