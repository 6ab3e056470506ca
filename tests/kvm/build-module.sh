#!/usr/bin/env bash
# Build tests/kvm/module (pfnscope_kvmbug) for one lab kernel with the VM lab's own
# build-module.sh (its compilers, chroots and checks): that script builds the module/
# directory beside itself, so it runs from a directory of links.
# usage: build-module.sh GEN OUTDIR   prints OUTDIR/pfnscope_kvmbug.ko
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VM=$HERE/../vm
[ $# -eq 2 ] || { echo "usage: build-module.sh 6.1|6.12|7 OUTDIR" >&2; exit 2; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cp "$VM/build-module.sh" "$t/"
ln -s "$(cd "$VM" && pwd)/kernels.sh" "$t/kernels.sh"
ln -s "$(cd "$VM" && pwd)/chroot.sh" "$t/chroot.sh"
ln -s "$HERE/module" "$t/module"
ko=$(bash "$t/build-module.sh" "$1" "$2" | tail -n1)
mv "$ko" "$2/pfnscope_kvmbug.ko"
echo "$2/pfnscope_kvmbug.ko"
