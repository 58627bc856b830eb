#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md: builds prefsync and its load generator, runs a
# hub on a fresh store on loopback, and drives it. Every step is bounded in time and
# count. Usage: scripts/bench.sh [work-dir]   (needs ~6 GB of disk; takes ~12 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
go build -o "$dir/prefsync" ./cmd/prefsync
go build -o "$dir/prefsync-load" ./cmd/prefsync-load
export PREFSYNC_KEY=bench-admin-key-0123456789
addr=127.0.0.1:18089
load() { "$dir/prefsync-load" -url "http://$addr" "$@"; }
pid=
start_hub() {
  PREFSYNC_BOOTSTRAP_ADMIN_KEY=$PREFSYNC_KEY "$dir/prefsync" serve --addr $addr --database "$dir/$1" --log-level info 2>"$dir/serve.log" &
  pid=$!
  for _ in $(seq 1 600); do grep -q listening "$dir/serve.log" 2>/dev/null && return; sleep 0.1; done
  echo "hub did not start" >&2; exit 1
}
stop_hub() { kill "$pid"; wait "$pid" || true; }
trap 'kill $pid 2>/dev/null || true' EXIT
# This machine is a virtual one: the share of CPU time its host took away ("steal") since
# the last section is printed with each section, since it changes what the figures mean.
last_stat=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
steal() {
  local now; now=$(awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$last_stat $now" | awk '{printf "   (cpu steal since the last section: %.0f%%)\n", 100*($3-$1)/($4-$2)}'
  last_stat=$now
}

echo "== Go benchmarks (in-process decision, index lookup, index memory, store alone)"
go test -run '^$' -bench 'Decide|IndexCheck|IndexMemory' -benchtime 2s . | grep Benchmark
go test -run '^$' -bench 'ApplyBatch' -benchtime 80x ./sqlite | grep Benchmark

steal
echo "== Durable ingest on a fresh store (100k contacts)"
rm -f "$dir"/ingest.db*
start_hub ingest.db
load -mode ingest -clients 32 -duration 10s -contacts 100000
load -mode batch -batch 500 -clients 4 -count 250000 -duration 20s -contacts 100000
stop_hub

steal
echo "== 1M contacts: import, start-up, checks"
rm -f "$dir"/big.db*
start_hub big.db
load -mode seed -contacts 1000000 -batch 500 -clients 4 2>/dev/null
stop_hub
start=$(date +%s%N)
start_hub big.db
echo "start-up to listening with 1M contacts: $(( ($(date +%s%N) - start) / 1000000 )) ms"
grep "index loaded" "$dir/serve.log"
curl -s "http://$addr/metrics" | grep -E '^go_memstats_heap_inuse_bytes|^prefsync_index_contacts'
# How late this machine wakes a sleeping thread, while the hub idles: a floor under the
# checks' latency tail.
load -mode jitter -duration 5s
for rate in 2000 5000 10000 20000; do load -mode check -rate $rate -clients 8 -duration 5s; done
load -mode stream -count 2000000 -clients 1
load -mode stream -count 4000000 -clients 2
steal
echo "== Durable ingest into the 1M-contact store (random existing contacts)"
load -mode ingest -clients 32 -duration 10s -contacts 1000000
load -mode batch -batch 500 -clients 4 -count 250000 -duration 20s -contacts 1000000
stop_hub

steal
echo "== Outbound webhooks: 1,000 changes/s fanned out to 10 endpoints"
rm -f "$dir"/sync.db*
start_hub sync.db
load -mode propagate -rate 1000 -endpoints 10 -duration 20s -clients 100
steal
echo "== A backlog of 1,000,000 deliveries, drained once its endpoint returns"
load -mode backlog -count 1000000 -batch 500
stop_hub
steal
