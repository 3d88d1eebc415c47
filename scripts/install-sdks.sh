#!/usr/bin/env bash
# Installs the official SDKs that tests/sdk drives against the gateway, pinned:
#   - a Python venv at $SDK_DIR/venv with openai, anthropic and pytest;
#   - a Node project at $SDK_DIR/node with openai (from tests/sdk/node/package.json).
# SDK_DIR is $PORTCULLIS_SDK_DIR (a relative path is taken from the repository root), or .sdk
# at the repository root. $PYTHON picks the interpreter for the venv (default python3). Packages
# come from the registries the default pip and npm clients are configured for.
#
# Note: openai 7.x for Node declares engines node >=22 (npm warns EBADENGINE on older Node);
# the tests in tests/sdk/node also pass on Node 20.
#
# Idempotent: a stamp file records the pins of the last successful install, and when it matches
# (and the installs are still there) the script returns at once. A lock serialises concurrent
# runs (the Rust tests call this from parallel tests).
set -euo pipefail

# The pins. The Node one must agree with tests/sdk/node/package.json (checked below).
OPENAI_PY_VERSION=3.51.0
ANTHROPIC_PY_VERSION=2.10.0
PYTEST_VERSION=9.2.0
OPENAI_NODE_VERSION=7.55.0

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sdk_dir="${PORTCULLIS_SDK_DIR:-$repo/.sdk}"
[[ "$sdk_dir" == /* ]] || sdk_dir="$repo/$sdk_dir" # relative: from the repository root
package_json="$repo/tests/sdk/node/package.json"
stamp_file="$sdk_dir/installed.stamp"
python="${PYTHON:-python3}"

stamp="python openai==$OPENAI_PY_VERSION anthropic==$ANTHROPIC_PY_VERSION pytest==$PYTEST_VERSION
node openai@$OPENAI_NODE_VERSION"

log() { printf 'install-sdks: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Whether a previous run left a complete install of exactly these pins.
up_to_date() {
    [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] &&
        [[ -x "$sdk_dir/venv/bin/python" ]] &&
        [[ -f "$sdk_dir/node/node_modules/openai/package.json" ]] &&
        cmp -s "$package_json" "$sdk_dir/node/package.json"
}

grep -q "\"openai\": \"$OPENAI_NODE_VERSION\"" "$package_json" ||
    die "$package_json does not pin \"openai\": \"$OPENAI_NODE_VERSION\""

if up_to_date; then
    log "up to date in $sdk_dir"
    exit 0
fi

mkdir -p "$sdk_dir"
# Serialise with any concurrent run, then look again: it may have done the work.
if command -v flock >/dev/null; then
    exec 9>"$sdk_dir/.lock"
    flock 9
    if up_to_date; then
        log "up to date in $sdk_dir"
        exit 0
    fi
fi
rm -f "$stamp_file"

command -v "$python" >/dev/null || die "$python not found"
command -v node >/dev/null || die "node not found"
command -v npm >/dev/null || die "npm not found"

log "python: venv with openai==$OPENAI_PY_VERSION anthropic==$ANTHROPIC_PY_VERSION pytest==$PYTEST_VERSION"
"$python" -m venv "$sdk_dir/venv"
"$sdk_dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "openai==$OPENAI_PY_VERSION" "anthropic==$ANTHROPIC_PY_VERSION" "pytest==$PYTEST_VERSION"
installed="$("$sdk_dir/venv/bin/python" -c 'import openai; print(openai.__version__)')"
[[ "$installed" == "$OPENAI_PY_VERSION" ]] || die "python openai is $installed, not $OPENAI_PY_VERSION"
installed="$("$sdk_dir/venv/bin/python" -c 'import anthropic; print(anthropic.__version__)')"
[[ "$installed" == "$ANTHROPIC_PY_VERSION" ]] || die "python anthropic is $installed, not $ANTHROPIC_PY_VERSION"

log "node: openai@$OPENAI_NODE_VERSION"
mkdir -p "$sdk_dir/node"
cp "$package_json" "$sdk_dir/node/package.json"
(cd "$sdk_dir/node" &&
    npm install --no-audit --no-fund --save-exact "openai@$OPENAI_NODE_VERSION")
# npm rewrites package.json when saving; put the repository's copy back so the stamp check
# (which compares them) stays meaningful.
cp "$package_json" "$sdk_dir/node/package.json"
installed="$(node -p 'require(process.argv[1]).version' "$sdk_dir/node/node_modules/openai/package.json")"
[[ "$installed" == "$OPENAI_NODE_VERSION" ]] || die "node openai is $installed, not $OPENAI_NODE_VERSION"

printf '%s\n' "$stamp" >"$stamp_file.tmp"
mv "$stamp_file.tmp" "$stamp_file"
log "installed in $sdk_dir"
