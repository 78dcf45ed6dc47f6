#!/usr/bin/env bash
# setup-host.sh - ready a Debian 12 machine (run as root, no systemd needed,
# no Docker Hub needed) for the scistacks docker tests.  Idempotent: a rerun
# on a ready machine only checks and takes a couple of seconds.
#
# Contract relied on by other code:
#   SCISTACKS_BASE_IMAGE_AMD64=scistacks/debian:bookworm-amd64
#   SCISTACKS_BASE_IMAGE_ARM64=scistacks/debian:bookworm-arm64
#   SCISTACKS_REGISTRY=localhost:5000   (plain http, listening on 127.0.0.1:5000)
#
# Usage: scripts/setup-host.sh [--no-registry] [--no-arm64] [--check] [--rebuild-base]
#   --no-registry   do not start the local registry
#   --no-arm64      no arm64 emulation, no arm64 base image
#   --check         only report what is missing; exit 1 if anything is
#   --rebuild-base  make new rootfs tarballs and base images (picks up new
#                   package versions); the old tags stay usable until replaced
# Env:   SCISTACKS_CACHE (default /var/cache/scistacks): rootfs tarballs,
#        registry storage and config, per-step logs.
#        SCISTACKS_DEBIAN_MIRROR (default http://deb.debian.org/debian).
#
# Base image rootfs choices: minbase variant, apt package lists are NOT kept
# (mmdebstrap removes them by default, and we do the same for debootstrap), so
# image builds must run `apt-get update` before `apt-get install`.
set -Eeuo pipefail

SCISTACKS_BASE_IMAGE_AMD64=scistacks/debian:bookworm-amd64
SCISTACKS_BASE_IMAGE_ARM64=scistacks/debian:bookworm-arm64
REGISTRY_ADDR=127.0.0.1:5000
SUITE=bookworm
PACKAGES=(docker.io docker-registry qemu-user-static binfmt-support mmdebstrap debootstrap chromium chromium-driver)
# what CPython's build needs for the offline-pangeo channel (examples/offline-pangeo)
PACKAGES+=(build-essential libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev)
PACKAGES+=(libreadline-dev uuid-dev libncurses-dev libgdbm-dev)
BUILDX_PLUGIN_DIR=/usr/libexec/docker/cli-plugins
COSIGN_BIN=/usr/local/bin/cosign
DOCKERD_LOG=/var/log/scistacks-dockerd.log
REGISTRY_LOG=/var/log/scistacks-registry.log
BINFMT_DIR=/proc/sys/fs/binfmt_misc

CACHE=${SCISTACKS_CACHE:-/var/cache/scistacks}
MIRROR=${SCISTACKS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Fixed default so that rebuilt rootfs tarballs differ only by package versions.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

WITH_REGISTRY=1
WITH_ARM64=1
CHECK_ONLY=0
REBUILD_BASE=0

usage() {
    sed -n '2,/^set -/{/^set -/d;s/^# \{0,1\}//;p}' "$0"
}

while [ $# -gt 0 ]; do
    case $1 in
        --no-registry) WITH_REGISTRY=0 ;;
        --no-arm64) WITH_ARM64=0 ;;
        --check) CHECK_ONLY=1 ;;
        --rebuild-base) REBUILD_BASE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "setup-host: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$CHECK_ONLY" = 1 ] && [ "$REBUILD_BASE" = 1 ]; then
    echo "setup-host: --check and --rebuild-base exclude each other" >&2
    exit 2
fi

if [ "$(id -u)" != 0 ]; then
    echo "setup-host: must run as root" >&2
    exit 2
fi

LOGDIR=$CACHE/logs
TMPROOT=$CACHE/tmp
TMPDIRS=()
CREATED_POLICY_RC=0
MISSING=0
SCRIPT_T0=$EPOCHREALTIME

cleanup() {
    local d
    for d in "${TMPDIRS[@]}"; do
        [ -n "$d" ] && [ -e "$d" ] || continue
        umount_below "$d"
        rm -rf --one-file-system "$d"
    done
    if [ "$CREATED_POLICY_RC" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
}
trap cleanup EXIT
trap 'say "${STEP:-setup}: FAILED - command at line $LINENO exited $?" >&2' ERR

# ---------------------------------------------------------------- helpers

usec() { local t=${1/./}; echo "${t#0}"; }

elapsed() { # elapsed START -> "1.2s"
    local d=$(( $(usec "$EPOCHREALTIME") - $(usec "$1") ))
    printf '%d.%ds' $((d / 1000000)) $(((d / 100000) % 10))
}

say() { printf '[setup-host] %s\n' "$*"; }

STEP=
STEP_T0=
step() { STEP=$1; STEP_T0=$EPOCHREALTIME; }
done_step() { say "$STEP: $* ($(elapsed "$STEP_T0"))"; }

missing() {
    MISSING=1
    done_step "MISSING - $*"
}

die() {
    say "$STEP: FAILED - $*" >&2
    exit 1
}

TMPD=
mktempdir() { # mktempdir NAME: sets TMPD to a new dir, removed on exit
    mkdir -p "$TMPROOT"
    TMPD=$(mktemp -d "$TMPROOT/$1.XXXXXX")
    TMPDIRS+=("$TMPD")
}

# run_logged NAME CMD... : run CMD with its output in $LOGDIR/NAME.log; on
# failure show the log's tail and fail the step.
run_logged() {
    local name=$1; shift
    mkdir -p "$LOGDIR"
    local log=$LOGDIR/$name.log
    if ! "$@" >"$log" 2>&1 </dev/null; then
        tail -n 30 "$log" | sed 's/^/    /' >&2
        die "'$*' failed, full log: $log"
    fi
}

umount_below() { # unmount everything mounted at or below DIR, deepest first
    local dir mnt
    dir=$(readlink -f "$1")
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
        sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

pkg_installed() {
    [ "$(dpkg-query -W -f '${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

docker_up() { timeout 10 docker info >/dev/null 2>&1; }

# trixie_deb PKG: sets DEB to Debian 13's PKG .deb, downloaded once into $CACHE/debs
# with a private apt state (the system's sources and lists stay as they are).
DEB=
trixie_deb() {
    local pkg=$1 debdir=$CACHE/debs tmp
    mkdir -p "$debdir"
    DEB=$(ls -1 "$debdir/${pkg}"_*.deb 2>/dev/null | tail -n1 || true)
    [ -n "$DEB" ] && return 0
    mktempdir "$pkg"; tmp=$TMPD
    chmod 755 "$tmp"   # lets apt's _apt sandbox user write the download
    mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/dl"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" \
        >"$tmp/sources.list"
    local aptopts=(
        -o "Dir::Etc::SourceList=$tmp/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$tmp/lists"
        -o "Dir::Cache=$tmp/cache"
    )
    run_logged "$pkg-apt-update" apt-get "${aptopts[@]}" update
    run_logged "$pkg-download" sh -c 'cd "$1" && shift && exec "$@"' _ "$tmp/dl" \
        apt-get "${aptopts[@]}" download "$pkg"
    DEB=$(ls -1 "$tmp/dl/${pkg}"_*.deb | head -n1)
    cp "$DEB" "$debdir/"
    DEB=$debdir/$(basename "$DEB")
}

buildx_ok() { timeout 20 docker buildx version >/dev/null 2>&1; }

cosign_ok() { timeout 20 cosign version >/dev/null 2>&1; }

binfmt_ok() {
    [ -r "$BINFMT_DIR/qemu-aarch64" ] && [ "$(head -n1 "$BINFMT_DIR/qemu-aarch64")" = enabled ]
}

registry_up() { curl -fsS -o /dev/null --max-time 3 "http://$REGISTRY_ADDR/v2/" 2>/dev/null; }

image_arch() { docker image inspect -f '{{.Architecture}}' "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- steps

step_packages() {
    step packages
    local p todo=()
    for p in "${PACKAGES[@]}"; do
        pkg_installed "$p" || todo+=("$p")
    done
    if [ ${#todo[@]} -eq 0 ]; then done_step "ok"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then missing "${todo[*]}"; return; fi
    # No service may start from a postinst: this script starts dockerd and the
    # registry itself (Debian's registry service would take port 5000 with its
    # own storage).  Respect an existing policy-rc.d, else add one for now.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        CREATED_POLICY_RC=1
    fi
    run_logged apt-update apt-get update
    run_logged apt-install apt-get install -y "${todo[@]}"
    if [ "$CREATED_POLICY_RC" = 1 ]; then rm -f /usr/sbin/policy-rc.d; CREATED_POLICY_RC=0; fi
    done_step "installed ${todo[*]}"
}

step_buildx() {
    step buildx
    if buildx_ok; then done_step "ok"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then missing "docker buildx plugin"; return; fi
    # Debian 12 has no docker-buildx; take Debian 13's (needs only libc6 >= 2.34)
    # with a private apt state, leaving the system's sources and lists alone.
    local deb tmp
    trixie_deb docker-buildx; deb=$DEB
    mktempdir buildx-x; tmp=$TMPD
    run_logged buildx-extract dpkg -x "$deb" "$tmp/root"
    install -d "$BUILDX_PLUGIN_DIR"
    install -m 755 "$tmp/root/usr/libexec/docker/cli-plugins/docker-buildx" "$BUILDX_PLUGIN_DIR/docker-buildx"
    buildx_ok || die "docker buildx version still fails after installing $(basename "$deb")"
    done_step "installed from $(basename "$deb")"
}

step_cosign() {
    step cosign
    if cosign_ok; then done_step "ok ($(command -v cosign))"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then missing "cosign (for scistacks publish --sign / verify)"; return; fi
    # Debian 12 has no cosign; take Debian 13's (a static Go binary) the way buildx
    # is taken above: private apt state, the .deb kept in the cache.
    local deb tmp
    trixie_deb cosign; deb=$DEB
    mktempdir cosign-x; tmp=$TMPD
    run_logged cosign-extract dpkg -x "$deb" "$tmp/root"
    install -m 755 "$tmp/root/usr/bin/cosign" "$COSIGN_BIN"
    cosign_ok || die "cosign version still fails after installing $(basename "$deb")"
    done_step "installed $COSIGN_BIN from $(basename "$deb")"
}

step_dockerd() {
    step dockerd
    if docker_up; then done_step "ok"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then missing "docker daemon not answering"; return; fi
    local pid=
    [ -r /var/run/docker.pid ] && pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        say "dockerd: pid $pid exists but does not answer yet, waiting"
    else
        local dockerd
        dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
        [ -x "$dockerd" ] || die "no dockerd binary (is docker.io installed?)"
        echo "=== $(date -u +%FT%TZ) setup-host starts $dockerd" >>"$DOCKERD_LOG"
        setsid nohup "$dockerd" >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    fi
    local i
    for i in $(seq 60); do
        docker_up && { done_step "started"; return; }
        sleep 1
    done
    tail -n 20 "$DOCKERD_LOG" | sed 's/^/    /' >&2
    die "docker info did not answer within 60 s, see $DOCKERD_LOG"
}

step_binfmt() {
    step binfmt-arm64
    if binfmt_ok; then done_step "ok"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then missing "qemu-aarch64 binfmt handler not enabled"; return; fi
    if ! mountpoint -q "$BINFMT_DIR"; then
        mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" || die "cannot mount binfmt_misc"
    fi
    run_logged binfmt update-binfmts --enable qemu-aarch64
    binfmt_ok || die "qemu-aarch64 still not enabled in $BINFMT_DIR"
    done_step "enabled"
}

stop_debian_registry_service() {
    # Debian's own docker-registry service (started by its postinst or init
    # script when no policy-rc.d forbids it) would hold port 5000.
    local pids
    pids=$(pgrep -u docker-registry -x docker-registry 2>/dev/null || true)
    [ -z "$pids" ] && return 0
    say "registry: stopping Debian's docker-registry service (pid $pids)"
    if [ -x /etc/init.d/docker-registry ]; then
        /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
    local pid
    for pid in $(pgrep -u docker-registry -x docker-registry 2>/dev/null || true); do
        kill "$pid" 2>/dev/null || true
    done
}

step_registry() {
    step registry
    [ "$CHECK_ONLY" = 1 ] || stop_debian_registry_service
    if registry_up; then done_step "ok (http://$REGISTRY_ADDR)"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then missing "nothing answers on http://$REGISTRY_ADDR/v2/"; return; fi
    local conf=$CACHE/registry.yml root=$CACHE/registry
    mkdir -p "$root"
    cat >"$conf" <<EOF
# written by scistacks setup-host.sh
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $root
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
    echo "=== $(date -u +%FT%TZ) setup-host starts docker-registry serve $conf" >>"$REGISTRY_LOG"
    setsid nohup docker-registry serve "$conf" >>"$REGISTRY_LOG" 2>&1 </dev/null 9>&- &
    local i
    for i in $(seq 30); do
        registry_up && { done_step "started (http://$REGISTRY_ADDR, storage $root)"; return; }
        sleep 1
    done
    tail -n 20 "$REGISTRY_LOG" | sed 's/^/    /' >&2
    die "registry did not answer within 30 s, see $REGISTRY_LOG"
}

# Run on both rootfs trees at the end: drop what debootstrap/mmdebstrap copied
# from this host (docker bind-mounts its own hostname and resolv.conf) and logs.
TIDY_HOOK='echo localhost >"$1/etc/hostname"; : >"$1/etc/resolv.conf"; rm -rf "$1"/var/log/*.log "$1"/var/log/apt/*'

make_rootfs_amd64() { # OUT.tar
    local out=$1 tmp
    mktempdir rootfs-amd64; tmp=$TMPD
    run_logged debootstrap-amd64 debootstrap --variant=minbase --arch=amd64 "$SUITE" "$tmp/root" "$MIRROR"
    umount_below "$tmp/root"
    # Same clean-up as mmdebstrap's defaults, so both images behave alike.
    rm -rf "$tmp/root/var/lib/apt/lists/"* "$tmp/root/var/cache/apt/"*.bin \
        "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/log/"*.log \
        "$tmp/root/debootstrap"
    sh -c "$TIDY_HOOK" sh "$tmp/root"
    run_logged tar-amd64 tar -C "$tmp/root" --numeric-owner --xattrs --sort=name \
        --mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        -cf "$out" .
    rm -rf --one-file-system "$tmp/root"   # slow on a busy disk; count it here
}

make_rootfs_arm64() { # OUT.tar
    # The merged-usr hook installs usr-is-merged the way debootstrap does;
    # otherwise apt picks usrmerge, which drags perl into the image.
    run_logged mmdebstrap-arm64 mmdebstrap --variant=minbase --architectures=arm64 \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --customize-hook="$TIDY_HOOK" \
        --format=tar "$SUITE" "$1" "$MIRROR"
}

# step_base ARCH IMAGE
step_base() {
    local arch=$1 image=$2 rootfs=$CACHE/rootfs-$SUITE-$1.tar
    step "image-$arch"
    local have
    have=$(image_arch "$image")
    if [ "$have" = "$arch" ] && [ "$REBUILD_BASE" = 0 ]; then done_step "ok ($image)"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then
        if [ -f "$rootfs" ] && [ -s "$rootfs" ]; then missing "$image (rootfs cached)"; else missing "$image and $rootfs"; fi
        return
    fi
    if [ -n "$have" ] && [ "$have" != "$arch" ]; then
        say "image-$arch: $image has architecture '$have', rebuilding"
    fi
    local how="cached rootfs"
    if [ "$REBUILD_BASE" = 1 ] || [ ! -f "$rootfs" ] || [ ! -s "$rootfs" ]; then
        local t0=$EPOCHREALTIME
        mkdir -p "$CACHE"
        rm -rf --one-file-system "$rootfs" "$rootfs.part"
        "make_rootfs_$arch" "$rootfs.part"
        mv -f "$rootfs.part" "$rootfs"
        how="new rootfs in $(elapsed "$t0")"
    fi
    local ctx old_id new_id
    old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    mktempdir "image-$arch"; ctx=$TMPD
    ln "$rootfs" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar"
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$ctx/Dockerfile"
    BUILDX_NO_DEFAULT_ATTESTATIONS=1 run_logged "build-$arch" \
        docker buildx build --builder default --platform "linux/$arch" --load -t "$image" "$ctx"
    have=$(image_arch "$image")
    [ "$have" = "$arch" ] || die "$image has architecture '$have', expected $arch"
    new_id=$(docker image inspect -f '{{.Id}}' "$image")
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
        # Drop the replaced image unless something still uses it.
        docker image rm "$old_id" >/dev/null 2>&1 || true
    fi
    done_step "built $image ($how)"
}

# step_run ARCH IMAGE EXPECTED_UNAME
step_run() {
    local arch=$1 image=$2 want=$3 got
    step "run-$arch"
    if [ "$(image_arch "$image")" != "$arch" ]; then
        if [ "$CHECK_ONLY" = 1 ]; then missing "no $image to run"; return; fi
        die "no $image to run"
    fi
    got=$(timeout 120 docker run --rm --network none --platform "linux/$arch" "$image" uname -m 2>&1 || true)
    if [ "$got" = "$want" ]; then done_step "ok (uname -m: $got)"; return; fi
    if [ "$CHECK_ONLY" = 1 ]; then missing "uname -m gave '$got', expected $want"; return; fi
    die "uname -m in $image gave '$got', expected $want"
}

# ---------------------------------------------------------------- main

if [ "$CHECK_ONLY" = 0 ]; then
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.setup-host.lock"
    if ! flock -n 9; then
        say "another setup-host run holds $CACHE/.setup-host.lock, waiting"
        flock 9
    fi
fi

step_packages
if [ "$CHECK_ONLY" = 1 ] && ! command -v docker >/dev/null; then
    step docker; missing "no docker client on PATH"
    exit 1
fi
step_buildx
step_cosign
step_dockerd
if [ "$WITH_ARM64" = 1 ]; then step_binfmt; fi
if [ "$WITH_REGISTRY" = 1 ]; then step_registry; fi
if [ "$CHECK_ONLY" = 1 ] && ! docker_up; then
    say "images: not checked (docker daemon not answering)"
else
    step_base amd64 "$SCISTACKS_BASE_IMAGE_AMD64"
    if [ "$WITH_ARM64" = 1 ]; then step_base arm64 "$SCISTACKS_BASE_IMAGE_ARM64"; fi
    step_run amd64 "$SCISTACKS_BASE_IMAGE_AMD64" x86_64
    if [ "$WITH_ARM64" = 1 ]; then step_run arm64 "$SCISTACKS_BASE_IMAGE_ARM64" aarch64; fi
fi

if [ "$MISSING" = 1 ]; then
    say "NOT READY: see MISSING lines above ($(elapsed "$SCRIPT_T0"))"
    exit 1
fi
say "ready ($(elapsed "$SCRIPT_T0"))"
