#!/usr/bin/env bash
# Builds Parley's three images (the Dockerfile's api, bot and operator targets), and on request the test
# PostgreSQL image, and saves each one as an archive that `docker load` and `ctr images import` accept.
# See `--help` and docs/guides/deployment.md ("Images").
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGE_TAG=${IMAGE_TAG:-dev}
IMAGES_DIR=${PARLEY_IMAGES_DIR:-$HOME/.cache/parley/images}
BUILDAH_DIR=${PARLEY_BUILDAH_DIR:-$HOME/.cache/parley/buildah}
BUILDER=${PARLEY_IMAGE_BUILDER:-auto}
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${PARLEY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${PARLEY_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
TARGETS=(api bot operator)
FIXTURE_DIR=tests/cluster/images/postgres
FIXTURE_IMAGE=parley-test-postgres
FIXTURE_TAG=15
# What the product images are built from: any change here rebuilds them (and nothing else does).
PRODUCT_INPUTS=(Dockerfile .dockerignore uv.lock pyproject.toml alembic.ini migrations
  core/pyproject.toml core/parley_core api/pyproject.toml api/parley_api
  bot/pyproject.toml bot/parley_bot operator/pyproject.toml operator/parley_operator testing/pyproject.toml)
# The Python base replaces python:3.11-slim-bookworm: Debian's own python3 is 3.11 on bookworm.
PYTHON_PACKAGES=python3,ca-certificates,netbase,tzdata
# Like debian:bookworm-slim: no documentation, manual pages or translations in the images.
DPKG_EXCLUDES=(path-exclude=/usr/share/doc/* path-include=/usr/share/doc/*/copyright
  path-exclude=/usr/share/man/* path-exclude=/usr/share/info/* path-exclude=/usr/share/locale/*
  path-include=/usr/share/locale/locale.alias)
# Bump when a change to this script changes what it builds (base images, build flags): the stamps and the
# base images' names include it, so every cached image is then rebuilt. Other edits rebuild nothing.
RECIPE=1

WITH_FIXTURES=0
FORCE=0

usage() {
  cat <<EOF
Usage: tools/images/build.sh [--tag TAG] [--with-test-fixtures] [--builder auto|docker|buildah] [--force]

Builds localhost/parley-{api,bot,operator}:TAG from the Dockerfile (exactly uv.lock's versions:
the Dockerfile runs uv sync --frozen) and saves each as IMAGES_DIR/parley-<name>.tar (a docker
archive: docker load, ctr images import). A second run with unchanged inputs rebuilds nothing.

  --tag TAG              image tag (default: \$IMAGE_TAG or dev)
  --with-test-fixtures   also build the test-only image localhost/$FIXTURE_IMAGE:$FIXTURE_TAG
                         from $FIXTURE_DIR/Containerfile (Debian's postgresql-15)
  --builder NAME         docker (needs docker buildx and a daemon), buildah, or auto (default:
                         docker when \`docker info\` works, else buildah)
  --force                rebuild everything, the base images too (Debian's latest updates)

Without Docker the images are built by buildah (vfs storage under $BUILDAH_DIR, chroot
isolation, nothing system-wide) from local base images it makes itself: Debian $DEBIAN_SUITE
with python3 from mmdebstrap in place of python:3.11-slim-bookworm, and uv from its PyPI wheel in
place of ghcr.io/astral-sh/uv; both are cached until this recipe changes (or --force).

Environment: IMAGE_TAG, PARLEY_IMAGES_DIR (default ~/.cache/parley/images), PARLEY_BUILDAH_DIR
(default ~/.cache/parley/buildah), PARLEY_IMAGE_BUILDER, PARLEY_DEBIAN_MIRROR,
PARLEY_DEBIAN_SECURITY_MIRROR, SSL_CERT_FILE (CA bundle the build trusts; default: the system's).
EOF
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

parse_args() {
  while (($#)); do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --tag) IMAGE_TAG=${2:?--tag needs a value}; shift ;;
      --with-test-fixtures) WITH_FIXTURES=1 ;;
      --builder) BUILDER=${2:?--builder needs a value}; shift ;;
      --force) FORCE=1 ;;
      *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
  done
  [[ $IMAGE_TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "not a valid image tag: $IMAGE_TAG"
}

pick_builder() {
  case $BUILDER in
    docker | buildah) ;;
    auto)
      if command -v docker >/dev/null && docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        BUILDER=docker
      else
        BUILDER=buildah
      fi ;;
    *) die "--builder must be auto, docker or buildah, not $BUILDER" ;;
  esac
  if [[ $BUILDER == buildah ]]; then
    local tool
    for tool in buildah mmdebstrap; do
      command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install buildah mmdebstrap), and no working Docker"
    done
  fi
}

# ---- inputs and stamps ------------------------------------------------------------------------------

# A hash of files' paths and contents (directories recursively, minus what .dockerignore drops), so that
# the same tree gives the same hash on any machine and a fresh clone.
hash_paths() {
  (cd "$REPO" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
    ! -path '*/.pytest_cache/*' ! -path '*/.mypy_cache/*' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-64
}

hash_text() { printf '%s\n' "$@" | sha256sum | cut -c1-64; }

# The Python minor version of the Dockerfile's default base (python:3.11-slim-bookworm -> 3.11), which the
# Debian base must provide.
python_version() {
  local version
  version=$(sed -n 's|^ARG PYTHON_IMAGE=python:\([0-9]*\.[0-9]*\).*$|\1|p' "$REPO/Dockerfile")
  [[ -n $version ]] || die "cannot read the Python version from the Dockerfile's ARG PYTHON_IMAGE"
  printf '%s\n' "$version"
}

uv_version() {
  local version
  version=$(sed -n 's|^ARG UV_IMAGE=.*:\([0-9][0-9.]*\)$|\1|p' "$REPO/Dockerfile")
  [[ -n $version ]] || die "cannot read the uv version from the Dockerfile's ARG UV_IMAGE"
  printf '%s\n' "$version"
}

# The archive is current when its stamp holds the hash of everything it was built from.
is_current() { [[ $FORCE == 0 && -f $1 && -f $1.stamp && $(cat "$1.stamp") == "$2" ]]; }

# ---- docker ------------------------------------------------------------------------------------------

docker_build() { # name target-or-empty context dockerfile
  local name=$1 target=$2 context=$3 file=$4
  docker build ${target:+--target "$target"} -f "$file" -t "${name#localhost/}" -t "$name" "$context"
  docker save -o "$IMAGES_DIR/$(archive_name "$name")" "$name"
}

# ---- buildah -----------------------------------------------------------------------------------------

STORE=()
BUILD_VOLUMES=()

buildah_setup() {
  mkdir -p "$BUILDAH_DIR/storage" "$BUILDAH_DIR/run" "$BUILDAH_DIR/work"
  STORE=(--root "$BUILDAH_DIR/storage" --runroot "$BUILDAH_DIR/run" --storage-driver vfs)
  # uv checks PyPI's certificate against its bundled Mozilla roots unless its configuration says to use the
  # system's, and a machine behind a TLS-inspecting proxy needs its own CA bundle. Both are bind-mounted
  # for the RUN steps only, over paths the base image already has, so nothing lands in a layer (a mount
  # point that does not exist would be left behind as an empty file): the bundle over the image's, and a
  # home directory holding .config/uv/uv.toml over /root (uv runs as root with HOME=/root).
  local ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt} home=$BUILDAH_DIR/work/home
  if [[ -f $ca ]]; then
    mkdir -p "$home/.config/uv"
    printf 'system-certs = true\n' >"$home/.config/uv/uv.toml"
    BUILD_VOLUMES=(--volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro" --volume "$home:/root:ro")
  fi
}

bah() { buildah "${STORE[@]}" "$@"; }

image_exists() { bah inspect --type image "$1" >/dev/null 2>&1; }

# A Debian root filesystem from mmdebstrap (minbase + packages) committed as an image.
debian_image() { # name packages
  local name=$1 packages=$2 rootfs container
  rootfs=$(mktemp "$BUILDAH_DIR/work/rootfs.XXXXXX.tar")
  log "mmdebstrap $DEBIAN_SUITE ${packages:-(minbase)} -> $name"
  # shellcheck disable=SC2016  # "$1" in the hooks is the root directory mmdebstrap passes them
  mmdebstrap --quiet --variant=minbase ${packages:+--include="$packages"} \
    "${DPKG_EXCLUDES[@]/#/--dpkgopt=}" \
    --customize-hook='[ ! -e "$1/usr/bin/python3" ] || ln -s /usr/bin/python3 "$1/usr/local/bin/python3"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*' \
    "$DEBIAN_SUITE" "$rootfs" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE main" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main" \
    "deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security main"
  if [[ $packages == *python3* ]] && ! tar -tf "$rootfs" "./usr/bin/python$(python_version)" >/dev/null 2>&1; then
    die "Debian $DEBIAN_SUITE does not ship python$(python_version), which the Dockerfile's base has"
  fi
  container=$(bah from --quiet scratch)
  bah add --quiet "$container" "$rootfs" /
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd '["/bin/bash"]' --created-by "mmdebstrap --variant=minbase $DEBIAN_SUITE $packages" "$container"
  bah commit --quiet --rm "$container" "$name" >/dev/null
  rm -f "$rootfs"
}

# pip from the machine's Python, else the one uvx fetches (Debian's python3 comes without pip).
pip_download() {
  if python3 -m pip --version >/dev/null 2>&1; then
    python3 -m pip download "$@"
  elif command -v uvx >/dev/null; then
    uvx pip download "$@"
  else
    die "need pip (python3 -m pip) or uvx to download uv's wheel from PyPI"
  fi
}

# FROM scratch with /uv, like ghcr.io/astral-sh/uv: the binary from uv's PyPI wheel of the same version.
uv_image() { # name version
  local name=$1 version=$2 wheels container
  wheels=$(mktemp -d "$BUILDAH_DIR/work/uv.XXXXXX")
  log "uv $version from PyPI -> $name"
  pip_download --quiet --disable-pip-version-check --no-deps --only-binary :all: --dest "$wheels" "uv==$version"
  python3 -m zipfile -e "$wheels"/uv-"$version"-*.whl "$wheels/x"
  chmod 0755 "$wheels/x/uv-$version.data/scripts/uv"
  container=$(bah from --quiet scratch)
  bah copy --quiet --chmod 0755 "$container" "$wheels/x/uv-$version.data/scripts/uv" /uv
  bah config --entrypoint '["/uv"]' "$container"
  bah commit --quiet --rm "$container" "$name" >/dev/null
  rm -rf "$wheels"
}

# The local base images, named by a hash of their recipe: present means current.
PYTHON_BASE=""
DEBIAN_BASE=""
UV_BASE=""
BASES_READY=0

base_names() {
  local recipe
  recipe=$(hash_text "$RECIPE" "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$DEBIAN_SECURITY_MIRROR" "${DPKG_EXCLUDES[@]}")
  PYTHON_BASE=localhost/parley-base-python:$(hash_text "$recipe" "$PYTHON_PACKAGES" | cut -c1-16)
  DEBIAN_BASE=localhost/parley-base-debian:$(cut -c1-16 <<<"$recipe")
  UV_BASE=localhost/parley-base-uv:$(uv_version)
}

# Made only when an image has to be built, so current archives need no buildah storage at all (a CI cache
# of the archives directory is enough).
base_images() {
  [[ $BASES_READY == 0 ]] || return 0
  BASES_READY=1
  # The two mmdebstrap runs are mostly waiting on the mirror: run them side by side.
  local jobs=()
  if [[ $FORCE == 1 ]] || ! image_exists "$PYTHON_BASE"; then
    debian_image "$PYTHON_BASE" "$PYTHON_PACKAGES" & jobs+=($!)
  fi
  if [[ $WITH_FIXTURES == 1 ]] && { [[ $FORCE == 1 ]] || ! image_exists "$DEBIAN_BASE"; }; then
    debian_image "$DEBIAN_BASE" "" & jobs+=($!)
  fi
  if [[ $FORCE == 1 ]] || ! image_exists "$UV_BASE"; then
    uv_image "$UV_BASE" "$(uv_version)"
  fi
  local job
  for job in "${jobs[@]}"; do
    wait "$job" || die "building a base image failed (see above)"
  done
}

buildah_build() { # name target-or-empty context dockerfile build-args...
  local name=$1 target=$2 context=$3 file=$4
  shift 4
  # No --layers: with the vfs driver every cached step is a full copy of the root filesystem, which made a
  # cold build five times slower; unchanged inputs are skipped as a whole instead (the stamps).
  bah bud --quiet --pull=never --isolation chroot --network host "${BUILD_VOLUMES[@]}" \
    ${target:+--target "$target"} "$@" -f "$file" -t "$name" "$context" >/dev/null
  rm -f "$IMAGES_DIR/$(archive_name "$name")"
  bah push --quiet "$name" "docker-archive:$IMAGES_DIR/$(archive_name "$name"):$name"
}

# buildah 1.28 leaves the working container of a stage that is only copied from (FROM uv) behind, and a
# rebuilt image's predecessor stays as an untagged copy; the storage is this script's own, so tidy it.
buildah_tidy() {
  bah rm --all >/dev/null
  bah rmi --prune >/dev/null 2>&1 || :
}

# ---- the images --------------------------------------------------------------------------------------

archive_name() { local base=${1##*/}; printf '%s.tar\n' "${base%%:*}"; }

build_image() { # name target-or-empty context dockerfile stamp build-args...
  local name=$1 target=$2 context=$3 file=$4 stamp=$5 archive
  shift 5
  archive=$IMAGES_DIR/$(archive_name "$name")
  if is_current "$archive" "$stamp"; then
    log "$name: up to date ($archive)"
    return
  fi
  log "$name: building with $BUILDER"
  local started=$SECONDS
  if [[ $BUILDER == docker ]]; then
    docker_build "$name" "$target" "$context" "$file"
  else
    base_images
    buildah_build "$name" "$target" "$context" "$file" "$@"
  fi
  printf '%s\n' "$stamp" >"$archive.stamp"
  log "$name: built in $((SECONDS - started)) s"
}

summary() {
  local name archive size
  printf '\n%-40s %10s  %s\n' IMAGE SIZE ARCHIVE
  for name in "$@"; do
    archive=$IMAGES_DIR/$(archive_name "$name")
    size=$(du -m --apparent-size "$archive" | cut -f1)
    printf '%-40s %6s MiB  %s\n' "$name" "$size" "$archive"
  done
}

main() {
  parse_args "$@"
  pick_builder
  mkdir -p "$IMAGES_DIR"
  # One build at a time per archive directory: two would share the buildah storage and the archives.
  exec 9>"$IMAGES_DIR/.build.lock"
  flock 9
  local build_args=() names=() fixture_args=()
  if [[ $BUILDER == buildah ]]; then
    buildah_setup
    base_names
    build_args=(--build-arg "PYTHON_IMAGE=$PYTHON_BASE" --build-arg "UV_IMAGE=$UV_BASE")
    fixture_args=(--build-arg "DEBIAN_IMAGE=$DEBIAN_BASE")
  fi
  local product_stamp target name
  product_stamp=$(hash_text "$RECIPE" "$BUILDER" "$(hash_paths "${PRODUCT_INPUTS[@]}")" "${build_args[@]}")
  for target in "${TARGETS[@]}"; do
    name=localhost/parley-$target:$IMAGE_TAG
    build_image "$name" "$target" "$REPO" "$REPO/Dockerfile" "$(hash_text "$product_stamp" "$name")" "${build_args[@]}"
    names+=("$name")
  done
  if [[ $WITH_FIXTURES == 1 ]]; then
    name=localhost/$FIXTURE_IMAGE:$FIXTURE_TAG
    build_image "$name" "" "$REPO/$FIXTURE_DIR" "$REPO/$FIXTURE_DIR/Containerfile" \
      "$(hash_text "$RECIPE" "$BUILDER" "$(hash_paths "$FIXTURE_DIR")" "${fixture_args[@]}")" "${fixture_args[@]}"
    names+=("$name")
  fi
  [[ $BASES_READY == 0 ]] || buildah_tidy
  summary "${names[@]}"
}

main "$@"
