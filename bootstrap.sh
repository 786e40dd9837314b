#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for repotool, then run the main job or the tests.
#
#   ./bootstrap.sh run     install what is missing, cut a full release of the
#                          embedded default, then serve it on http://127.0.0.1:8080
#   ./bootstrap.sh test    install what is missing, then run the test suite (pytest)
#
# Extra arguments after 'test' go to pytest (e.g. ./bootstrap.sh test -k media).
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the release flow and the tests use (real tools, no imitations).
APT_PACKAGES=(
  rpm dnf dnf-plugins-core createrepo-c gnupg gpgv
  xorriso isolinux syslinux-common syslinux-utils squashfs-tools isomd5sum cpio kmod
  grub-efi-amd64-bin grub-common mtools dosfstools
  busybox-static qemu-system-x86 ovmf mmdebstrap
  socat iperf3 curl openssl iptables ntpsec iproute2 util-linux
  nginx wrk hyperfine chromium
  python3-venv python3-dev ca-certificates
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_system_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # the live media's base system is fetched with 'apt-get download': it needs package lists
  if [ ${#missing[@]} -gt 0 ] || ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    echo "bootstrap: apt-get update" >&2
    as_root apt-get update -q
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

install_python() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # every Python dependency, test tools included (pytest, ruff, mypy), pinned with
  # hashes in requirements.lock; repotool itself on top, without resolving again
  .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
}

# the BSI's CSAF validator library for the CSAF tests (pinned in its package-lock.json)
install_csaf_validator() {
  if [ ! -d tools/csaf-validator/node_modules ]; then
    echo "bootstrap: npm ci in tools/csaf-validator" >&2
    (cd tools/csaf-validator && npm ci --no-audit --no-fund)
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  run)
    install_system_packages
    install_python
    install_csaf_validator
    .venv/bin/repotool release
    exec .venv/bin/repotool serve --host 127.0.0.1 --port 8080
    ;;
  test)
    install_system_packages
    install_python
    install_csaf_validator
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
