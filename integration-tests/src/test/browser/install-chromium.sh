#!/usr/bin/env bash
# Makes Debian's chromium available to the web view's browser test (WebViewIT), which finds it on PATH, at
# $ENGRAM_CHROMIUM, or extracted under $ENGRAM_CHROMIUM_DIR (default ~/.cache/engram/chromium).
#
#   as root with apt:  apt-get install chromium (system-wide)
#   otherwise:         apt-get download chromium and the packages it depends on that are not installed, and
#                      unpack them with dpkg -x into $ENGRAM_CHROMIUM_DIR (no root needed)
#                      and write the launcher $ENGRAM_CHROMIUM_DIR/chromium (sets LD_LIBRARY_PATH to the unpacked libraries)
#   --local:           the second way even as root
#
# It never fails the build: whatever goes wrong is printed and it exits 0, and the browser test then skips with a
# message naming what it looked for.
set -u

local_dir="${ENGRAM_CHROMIUM_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/engram/chromium}"
force_local=0
[ "${1:-}" = "--local" ] && force_local=1

say() { echo "install-chromium: $*"; }

found() {
    if [ -n "${ENGRAM_CHROMIUM:-}" ] && [ -x "$ENGRAM_CHROMIUM" ]; then say "using \$ENGRAM_CHROMIUM=$ENGRAM_CHROMIUM"; return 0; fi
    if [ "$force_local" = 0 ]; then
        for b in chromium chromium-browser; do
            if command -v "$b" >/dev/null 2>&1; then say "found $(command -v "$b")"; return 0; fi
        done
    fi
    if [ -x "$local_dir/chromium" ] && [ -x "$local_dir/usr/lib/chromium/chromium" ]; then say "found $local_dir/chromium"; return 0; fi
    return 1
}

found && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get on this machine; the browser test will skip"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive

if [ "$force_local" = 0 ] && [ "$(id -u)" = 0 ]; then
    say "apt-get install chromium"
    if timeout 120 apt-get update -qq && timeout 600 apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
        found && exit 0
    fi
    say "apt-get install failed; trying to unpack the packages into $local_dir instead"
fi

# Unpack chromium and its missing dependencies (by dpkg's view of what is installed) into $local_dir. Without root,
# apt reads package lists that it fetches into a private folder.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
apt_opts=()
if [ "$(id -u)" = 0 ]; then
    timeout 120 apt-get update -qq || say "apt-get update failed; using the package lists as they are"
else
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    apt_opts=(-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "Debug::NoLocking=1")
    timeout 120 apt-get "${apt_opts[@]}" update -qq 2>"$work/update.err" \
        || say "apt-get update (private lists) failed: $(tail -1 "$work/update.err")"
fi
deps="$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances chromium 2>/dev/null | grep -E '^[a-z0-9]' | sort -u)"
if [ -z "$deps" ]; then
    say "apt-cache knows no package chromium (package lists missing?); the browser test will skip"
    exit 0
fi
missing=()
for p in $deps; do
    case "$p" in
        chromium|chromium-common) missing+=("$p") ;; # the browser itself, also when a system copy is installed
        *) dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p") ;;
    esac
done
say "downloading ${#missing[@]} packages"
mkdir -p "$work/debs"
if ! (cd "$work/debs" && timeout 300 apt-get "${apt_opts[@]}" download -qq "${missing[@]}" >/dev/null 2>&1); then
    # virtual packages cannot be downloaded; retry one by one and keep what exists
    (cd "$work/debs" && for p in "${missing[@]}"; do timeout 60 apt-get "${apt_opts[@]}" download -qq "$p" >/dev/null 2>&1; done)
fi
mkdir -p "$local_dir"
for deb in "$work"/debs/*.deb; do
    [ -e "$deb" ] || continue
    dpkg -x "$deb" "$local_dir" || say "cannot unpack $deb"
done
if [ -x "$local_dir/usr/lib/chromium/chromium" ]; then
    libs="$(find "$local_dir" -name '*.so*' \( -type f -o -type l \) -printf '%h\n' | sort -u | tr '\n' ':')"
    cat > "$local_dir/chromium" <<LAUNCHER
#!/bin/sh
# written by install-chromium.sh: chromium unpacked from Debian packages, with their libraries
export LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:-}"
exec "$local_dir/usr/lib/chromium/chromium" "\$@"
LAUNCHER
    chmod +x "$local_dir/chromium"
fi
found && exit 0
say "chromium could not be installed; the browser test will skip"
exit 0
