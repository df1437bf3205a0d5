#!/bin/sh
# The container's entry point: the first start writes a starter config into
# /etc/mediaserver (data under /var/lib/mediaserver), then the server runs as
# PID 1 so SIGTERM (drain, then hang up) and SIGHUP (reload) reach it.
# Arguments are added to `mediaserver run`, e.g. --sip-port 5080 --log-level debug.
set -eu
config=/etc/mediaserver/config.yaml
if [ ! -f "$config" ]; then
    mediaserver init /etc/mediaserver --data-dir /var/lib/mediaserver
fi
exec mediaserver run --config "$config" "$@"
