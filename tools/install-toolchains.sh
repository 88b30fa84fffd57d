#!/usr/bin/env bash
# Installs the component toolchains `wasmgate build` uses for Python and
# JavaScript functions, at the versions its adapters are built and tested
# with, into one directory (default: target/toolchains):
#
#   DIR/python/                     a virtualenv with componentize-py
#   DIR/node_modules/.bin/          componentize-js
#
# Then: `wasmgate build --toolchains DIR …`, or WASMGATE_TOOLCHAINS=DIR.
# Needs python3 (with venv) and Node.js 18+ with npm. Running it again with
# both in place does nothing.
set -euo pipefail
COMPONENTIZE_PY=0.25.1
COMPONENTIZE_JS=0.23.0

dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/target/toolchains"}
mkdir -p "$dir"

if [ "$("$dir/python/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY" ]; then
  echo "installing componentize-py $COMPONENTIZE_PY into $dir/python" >&2
  python3 -m venv "$dir/python"
  "$dir/python/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY"
fi

if [ "$("$dir/node_modules/.bin/componentize-js" --version 2>/dev/null)" != "$COMPONENTIZE_JS" ]; then
  echo "installing componentize-js $COMPONENTIZE_JS into $dir/node_modules" >&2
  [ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"
  npm install --prefix "$dir" --no-audit --no-fund --silent "@bytecodealliance/componentize-js@$COMPONENTIZE_JS"
fi
