#!/bin/sh
# Flags live in /etc/ranker/flags.env, on a volume, so an edit survives a container
# restart. At the first start the file does not exist yet: write the defaults, taking the
# value of any RANKER_* variable the container's environment sets (so a compose file can
# seed a flag). From then on the file wins over the environment.
set -eu
flags=/etc/ranker/flags.env
if [ ! -f "$flags" ]; then
    mkdir -p /etc/ranker
    while IFS= read -r line; do
        case $line in
            RANKER_*=*)
                name=${line%%=*}
                eval "isset=\${$name+x}"
                if [ -n "$isset" ]; then
                    eval "printf '%s=%s\n' \"\$name\" \"\$$name\""
                else
                    printf '%s\n' "$line"
                fi ;;
            *) printf '%s\n' "$line" ;;
        esac
    done < /opt/ranker/flags.env.default > "$flags.tmp"
    mv "$flags.tmp" "$flags"
fi
set -a
. "$flags"
set +a
exec python3 /opt/ranker/ranker.py
