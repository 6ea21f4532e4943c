#!/usr/bin/env bash
# Install the system components Feiyun needs on a Debian machine: runc (the instance runtime),
# busybox-static (the built-in image's userland), iproute2 (ip, tc) and nftables (nft) for host
# networking, and for disks losetup (mount), fsfreeze (util-linux), mke2fs, resize2fs and e2fsck
# (e2fsprogs) and qemu-img (qemu-utils: the qcow2 form in which disks travel). With --test, also
# what the end-to-end suite needs: Python's venv module, Node.js with npm, and nsenter
# (util-linux) for the multi-host tests' network namespaces. Safe to run again.
set -euo pipefail
missing=()
command -v runc >/dev/null 2>&1 || missing+=(runc)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v tc >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v losetup >/dev/null 2>&1 || missing+=(mount)
command -v fsfreeze >/dev/null 2>&1 || missing+=(util-linux)
command -v resize2fs >/dev/null 2>&1 || missing+=(e2fsprogs)
command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
if [ "${1:-}" = "--test" ]; then
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "Feiyun needs ${missing[*]}; run this as root (it runs apt-get install)." >&2
        exit 1
    fi
    echo "Installing ${missing[*]} ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
