#!/usr/bin/env bash
# Real XRootD servers on localhost (for the remote-data tests, and for trying brewflow on
# root:// and http:// URLs on one machine). One daemon serves a folder over both protocols.
#
#   .ci/xrootd.sh install                    apt-get Debian's xrootd-server and xrootd-client; root
#   .ci/xrootd.sh start FOLDER PORT [HTTP]   serve FOLDER as root://localhost:PORT//<file> and,
#                                            with HTTP, http://localhost:HTTP/<file>; waits until
#                                            the server answers; prints the root:// URL
#   .ci/xrootd.sh stop PORT                  stop the daemon started on PORT
#   .ci/xrootd.sh stop-all                   stop every daemon this script started
#
# The daemon accepts connections from this host only (127.0.0.1, ::1: `xrd.allow`; XRootD has
# no directive to listen on one address, so it listens on every one and refuses the others).
# Two daemons on two ports over one folder are two replicas of its files. The daemon refuses to
# run as root, so it runs as the `xrootd` user the package creates (as root), or as you (not
# root): FOLDER must be readable by that user. State (config, log, pid) lives in
# $BREWFLOW_XROOTD_DIR/<PORT> (default /tmp/brewflow-xrootd).
set -euo pipefail

DIR=${BREWFLOW_XROOTD_DIR:-/tmp/brewflow-xrootd}

install() {
    if command -v xrootd >/dev/null && command -v xrdfs >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends xrootd-server xrootd-client >/dev/null
}

start() {
    local folder=${1:?usage: xrootd.sh start FOLDER PORT [HTTP_PORT]} port=${2:?port} http=${3:-}
    command -v xrootd >/dev/null || { echo "xrootd.sh: xrootd not installed (run: $0 install)" >&2; exit 1; }
    folder=$(realpath "$folder")
    stop "$port" >/dev/null 2>&1 || true
    local run=$DIR/$port
    mkdir -p "$run"
    {
        echo "all.export /"
        echo "xrd.port $port"
        echo "oss.localroot $folder"
        echo "all.adminpath $run"
        echo "all.pidpath $run"
        echo "xrd.allow host 127.0.0.1"
        echo "xrd.allow host [::1]"
        if [ -n "$http" ]; then echo "xrd.protocol XrdHttp:$http libXrdHttp.so"; fi
    } >"$run/xrootd.cfg"
    if [ "$(id -u)" = 0 ]; then
        chown -R xrootd:xrootd "$run"
        runuser -u xrootd -- xrootd -c "$run/xrootd.cfg" -l "$run/xrootd.log" -b
    else
        xrootd -c "$run/xrootd.cfg" -l "$run/xrootd.log" -b
    fi
    for _ in $(seq 100); do
        if xrdfs "root://localhost:$port" ls / >/dev/null 2>&1; then
            echo "root://localhost:$port/"
            return 0
        fi
        sleep 0.1
    done
    echo "xrootd.sh: the server on port $port did not answer in 10 s; see $run/xrootd.log*" >&2
    exit 1
}

stop() {
    local port=${1:?usage: xrootd.sh stop PORT} pid
    pid=$(cat "$DIR/$port"/*.pid "$DIR/$port"/*/*.pid 2>/dev/null | head -n 1 || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "${DIR:?}/$port"
}

stop_all() {
    [ -d "$DIR" ] || return 0
    for run in "$DIR"/*/; do
        [ -d "$run" ] && stop "$(basename "$run")"
    done
}

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    stop-all) stop_all ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
