#!/usr/bin/env bash
# A headless Chromium for the report's browser test (tests/test_report.py drives it through
# tests/browser.py: the DevTools protocol over a pipe, no downloaded browser).
#
#   .ci/chromium.sh install                 apt-get Debian's chromium (and a font); root
#   .ci/chromium.sh screenshot URL OUT.png  a screenshot of a page's first view (1400x1200),
#                                           e.g. file://$PWD/report.html
set -euo pipefail

install() {
    if command -v chromium >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
}

screenshot() {
    local url=${1:?usage: chromium.sh screenshot URL OUT.png} out=${2:?OUT.png}
    command -v chromium >/dev/null || { echo "chromium.sh: chromium not installed (run: $0 install)" >&2; exit 1; }
    # --no-sandbox: root in a container; the virtual time lets the page's scripts run first
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1200 \
        --virtual-time-budget=5000 --screenshot="$(realpath -m "$out")" "$url" 2>/dev/null
}

case "${1:-}" in
install) install ;;
screenshot) shift; screenshot "$@" ;;
*)
    echo "usage: $0 install|screenshot URL OUT.png" >&2
    exit 2
    ;;
esac
