#!/bin/sh
# The real tools and servers the tests use: zstd, skopeo, GNU tar, CNCF Distribution (docker-registry),
# openssl for the test CA and token-signing keys, buildah for the base image builder and a static
# busybox (/bin/busybox) to make the upstream test image from, containerd 1.6 (with ctr and runc) to load
# the image form as a Kubernetes node does (Debian packages).
# Installs the missing ones with apt-get when allowed (root, or sudo without a password).
set -e
missing=""
command -v zstd >/dev/null 2>&1 || missing="$missing zstd"
command -v skopeo >/dev/null 2>&1 || missing="$missing skopeo"
tar --version 2>/dev/null | grep -q 'GNU tar' || missing="$missing tar"
command -v docker-registry >/dev/null 2>&1 || missing="$missing docker-registry"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v buildah >/dev/null 2>&1 || missing="$missing buildah"
command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || missing="$missing containerd"
ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || missing="$missing busybox-static"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "the tests need:$missing; install them with: apt-get install$missing" >&2
  exit 1
fi
echo "installing test tools:$missing" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
