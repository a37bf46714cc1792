# shellcheck shell=bash disable=SC2034
# (SC2034: DEBIAN_IMAGE_REASON and DEBIAN_IMAGE_LOG are for the caller.)
# A Debian 12 base image for RUN tests, made on this machine with mmdebstrap from the host's own
# apt sources (no mirror address is written anywhere in the repository). Source it; it needs no
# other library, but a test usually sources lib.sh and registry_lib.sh first.
#
# make_debian_image ADDR REPO:TAG
#     Pushes the image (one layer, linux/<host arch>, CMD ["bash"]) to docker://ADDR/REPO:TAG
#     over plain HTTP (a loopback registry). The first call on a machine runs mmdebstrap
#     (variant minbase, about a minute) and keeps the OCI layout in the cache directory; later
#     calls only push it. Returns 0 when pushed; 77 when this machine cannot make it (not root,
#     mmdebstrap/umoci/skopeo missing, no Debian 12 entry in the host's sources, mirror not
#     reachable), with the reason in DEBIAN_IMAGE_REASON; 1 on any other failure, with
#     DEBIAN_IMAGE_REASON and the log in DEBIAN_IMAGE_LOG.
# debian_image_mirror_reachable
#     Returns 0 when the first Debian 12 source of the host answers a HEAD for its InRelease
#     file within 15 s; otherwise 77 with DEBIAN_IMAGE_REASON set. RUN steps that run apt-get
#     in the image reach the same mirror (the image keeps the host's sources).
#
# The cache lives in MINIBUILD_TEST_IMAGE_CACHE (default /var/tmp/minibuild-test-images) as
# debian12-<key>/ (an OCI layout, tag "debian12"), with the sources used (debian12-<key>.sources)
# and mmdebstrap's log beside it. The key hashes the Debian 12 entries taken from the host's
# sources, the architecture and the recipe below, so a machine with other sources gets its own
# image. Delete the directory to make a fresh one. Concurrent callers wait on a lock.
#
# Which sources: mmdebstrap without a MIRROR argument uses deb.debian.org, not the host's
# sources, so the entries are read here from the files apt reads (/etc/apt/sources.list,
# /etc/apt/sources.list.d/*.list and *.sources) and handed to mmdebstrap as files (a MIRROR
# argument naming an existing file is pasted into the chroot's sources, one-line or deb822).
# Only "deb" entries for bookworm, bookworm-updates, bookworm-security, ... are kept, so
# third-party repositories of the host (and an Ubuntu host's sources) are left out.

debian_image_cache=${MINIBUILD_TEST_IMAGE_CACHE:-/var/tmp/minibuild-test-images}
debian_image_suite=bookworm
# Changing how the image is made changes this, and with it the cache key.
debian_image_recipe="v1 mmdebstrap --variant=minbase --format=tar; /dev/* dropped; empty resolv.conf and hostname; umoci raw add-layer"

DEBIAN_IMAGE_REASON=""
DEBIAN_IMAGE_LOG=""

# _di_sources DIR: writes DIR/host.list (one-line entries) and DIR/host.sources (deb822
# stanzas) holding the host's Debian 12 "deb" entries; returns 1 when there is none.
_di_sources() {
  local dir=$1 file one_line=() deb822=()
  [ -f /etc/apt/sources.list ] && one_line+=(/etc/apt/sources.list)
  for file in /etc/apt/sources.list.d/*.list; do [ -f "$file" ] && one_line+=("$file"); done
  for file in /etc/apt/sources.list.d/*.sources; do [ -f "$file" ] && deb822+=("$file"); done
  : >"$dir/host.list"
  : >"$dir/host.sources"
  # One-line: "deb [options] URI SUITE COMPONENT...".
  [ ${#one_line[@]} -gt 0 ] && awk -v suite="$debian_image_suite" '
    {
      line = $0; sub(/#.*/, "", line); sub(/\[[^]]*\]/, "", line); sub(/^[ \t]+/, "", line)
      split(line, f, /[ \t]+/)
      if (f[1] == "deb" && f[3] ~ ("^" suite "(-[a-z]+)?/?$")) print $0
    }
  ' "${one_line[@]}" >"$dir/host.list"
  # deb822: paragraphs separated by blank lines; keep those enabled, of type deb, whose Suites
  # name this suite. Comment lines are dropped.
  [ ${#deb822[@]} -gt 0 ] && awk -v suite="$debian_image_suite" '
    BEGIN { RS = ""; FS = "\n" }
    {
      out = ""; types = ""; suites = ""; enabled = "yes"
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^[ \t]*#/) continue
        out = out $i "\n"
        if (tolower($i) ~ /^types:/) types = " " substr($i, 7) " "
        if (tolower($i) ~ /^suites:/) suites = " " substr($i, 8) " "
        if (tolower($i) ~ /^enabled:/) enabled = tolower(substr($i, 9))
      }
      gsub(/[ \t]+/, " ", types); gsub(/[ \t]+/, " ", suites); gsub(/ /, "", enabled)
      if (enabled != "no" && types ~ / deb / && suites ~ (" " suite "(-[a-z]+)?/? ")) print out
    }
  ' "${deb822[@]}" >"$dir/host.sources"
  [ -s "$dir/host.list" ] || [ -s "$dir/host.sources" ]
}

# _di_first_uri DIR: the first Debian 12 URI of the files _di_sources wrote.
_di_first_uri() {
  local dir=$1
  {
    awk '{ line = $0; sub(/\[[^]]*\]/, "", line); n = split(line, f, /[ \t]+/);
           for (i = 1; i <= n; i++) if (f[i] ~ /:\/\//) { print f[i]; exit } }' "$dir/host.list"
    awk 'tolower($1) == "uris:" { print $2; exit }' "$dir/host.sources"
  } | head -n 1
}

debian_image_mirror_reachable() {
  local dir uri
  dir=$(mktemp -d "${TMPDIR:-/tmp}/minibuild-debian-sources.XXXXXX") || return 1
  if ! _di_sources "$dir"; then
    rm -rf "$dir"
    DEBIAN_IMAGE_REASON="the host's apt sources have no Debian $debian_image_suite entry (/etc/apt/sources.list{,.d/})"
    return 77
  fi
  uri=$(_di_first_uri "$dir")
  rm -rf "$dir"
  if ! curl -sfI -o /dev/null --max-time 15 "${uri%/}/dists/$debian_image_suite/InRelease"; then
    DEBIAN_IMAGE_REASON="the host's apt mirror $uri does not answer (HEAD dists/$debian_image_suite/InRelease)"
    return 77
  fi
  return 0
}

# _di_build DIR LAYOUT: runs mmdebstrap with the sources in DIR and writes the OCI layout.
_di_build() {
  local dir=$1 layout=$2 mirrors=() include=()
  [ -s "$dir/host.list" ] && mirrors+=("$dir/host.list")
  [ -s "$dir/host.sources" ] && mirrors+=("$dir/host.sources")
  # apt in bookworm speaks https itself but needs the CA bundle to check the mirror.
  grep -qi 'https://' "$dir/host.list" "$dir/host.sources" && include=(--include=ca-certificates)
  # mmdebstrap copies the host's resolv.conf and hostname in; the image keeps them empty (the
  # sandbox supplies its own). /dev/* is dropped: nodes cannot be created rootless and the
  # sandbox mounts /dev anyway.
  echo "== mmdebstrap $debian_image_suite (minbase) with: ${mirrors[*]}"
  # shellcheck disable=SC2016 # $1 is the hook's argument (the chroot), expanded by mmdebstrap
  mmdebstrap --variant=minbase --format=tar --mode=root "${include[@]}" \
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname"; : >"$1/etc/resolv.conf"; : >"$1/etc/hostname"' \
    "$debian_image_suite" - "${mirrors[@]}" |
    mmtarfilter --path-exclude='/dev/*' >"$dir/rootfs.tar" || return 1
  [ -s "$dir/rootfs.tar" ] || return 1
  echo "== OCI layout (umoci)"
  umoci init --layout "$layout" &&
    umoci new --image "$layout:debian12" &&
    umoci raw add-layer --image "$layout:debian12" --history.created_by="mmdebstrap $debian_image_suite (minbase)" \
      "$dir/rootfs.tar" &&
    umoci config --image "$layout:debian12" --no-history --config.cmd=bash \
      --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin || return 1
  rm -f "$dir/rootfs.tar"
}

make_debian_image() {
  local addr=$1 ref=$2 tool
  DEBIAN_IMAGE_REASON=""
  DEBIAN_IMAGE_LOG=""
  if [ "$(id -u)" -ne 0 ]; then
    DEBIAN_IMAGE_REASON="making the Debian image needs root (mmdebstrap --mode=root)"
    return 77
  fi
  for tool in mmdebstrap mmtarfilter umoci skopeo curl flock sha256sum; do
    if ! command -v "$tool" >/dev/null; then
      DEBIAN_IMAGE_REASON="$tool is not installed (scripts/setup.sh installs it)"
      return 77
    fi
  done
  mkdir -p "$debian_image_cache" || {
    DEBIAN_IMAGE_REASON="cannot create $debian_image_cache"
    return 1
  }
  local scratch key layout
  scratch=$(mktemp -d "$debian_image_cache/.tmp.XXXXXX") || return 1
  if ! _di_sources "$scratch"; then
    rm -rf "$scratch"
    DEBIAN_IMAGE_REASON="the host's apt sources have no Debian $debian_image_suite entry (/etc/apt/sources.list{,.d/})"
    return 77
  fi
  key=$({
    printf '%s\n' "$debian_image_recipe" "$(dpkg --print-architecture)"
    cat "$scratch/host.list" "$scratch/host.sources"
  } | sha256sum | cut -c1-16)
  layout="$debian_image_cache/debian12-$key"
  DEBIAN_IMAGE_LOG="$layout.log"

  # One builder per machine at a time; the others wait and then find the layout.
  local status=0
  {
    flock 9
    if [ ! -f "$layout/index.json" ]; then
      if ! debian_image_mirror_reachable; then
        status=77
      else
        rm -rf "$layout.tmp"
        local started=$SECONDS
        if _di_build "$scratch" "$layout.tmp" >"$DEBIAN_IMAGE_LOG" 2>&1 &&
          mv "$layout.tmp" "$layout"; then
          cat "$scratch/host.list" "$scratch/host.sources" >"$layout.sources"
          echo "debian_image: made $layout in $((SECONDS - started)) s" >&2
        else
          rm -rf "$layout.tmp"
          DEBIAN_IMAGE_REASON="mmdebstrap or umoci failed (log: $DEBIAN_IMAGE_LOG)"
          status=1
        fi
      fi
    fi
  } 9>"$debian_image_cache/.lock"
  rm -rf "$scratch"
  [ "$status" -eq 0 ] || return "$status"

  if ! skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$layout:debian12" \
    "docker://$addr/$ref" >"$layout.push.log" 2>&1; then
    DEBIAN_IMAGE_REASON="skopeo could not push $layout to $addr/$ref: $(tail -n 3 "$layout.push.log")"
    return 1
  fi
  return 0
}
