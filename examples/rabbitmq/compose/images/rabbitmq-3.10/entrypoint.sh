#!/bin/sh
# Nodes of one cluster authenticate to each other with a shared Erlang cookie. The Debian
# package generated a random one when the base image was built; the compose file sets
# CLUSTER_COOKIE so every node, whatever image build it runs, has the same. rabbitmqctl run
# by `docker exec` reads the same file.
set -eu
if [ -n "${CLUSTER_COOKIE:-}" ]; then
    rm -f "$HOME/.erlang.cookie"
    umask 077
    printf '%s' "$CLUSTER_COOKIE" > "$HOME/.erlang.cookie"
fi
exec "$@"
