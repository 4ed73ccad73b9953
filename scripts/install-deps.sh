#!/usr/bin/env bash
# Installs every package memlane needs from Debian's archive. Idempotent:
# packages already present are left alone and apt is not touched at all
# when nothing is missing.
set -euo pipefail

pkgs=(
	build-essential pkg-config meson ninja-build clang llvm lld
	libclang-rt-14-dev clang-format
	libdpdk-dev dpdk libbpf-dev libxdp-dev bpftool
	libjemalloc-dev libxxhash-dev libcmocka-dev libssl-dev
	libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
	memcached libmemcached-dev libmemcached-tools
	python3 python3-pymemcache python3-prometheus-client python3-pylibmc
	iproute2 iputils-ping ethtool procps valgrind util-linux
	debhelper dpkg-dev fakeroot lintian systemd
)

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# The memcached package starts a system daemon on port 11211; memlane's
# tests start their own memcached on other ports, and `make run` needs
# 11211, so the packaged service is stopped if it was started.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q memcached 2>/dev/null; then
	$sudo systemctl stop memcached || true
	$sudo systemctl disable memcached || true
fi
