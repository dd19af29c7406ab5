# Citus built from the vendored upstream archive against the host's PostgreSQL (sourced by install.sh).
#
# Nothing is installed into the host: the build headers (postgresql-server-dev-<major>, libpq-dev,
# liblz4-dev, libzstd-dev, and libkrb5-dev + krb5-multidev + libssl-dev because the server headers
# include gssapi.h and openssl/ssl.h: Debian's server is built with both) are fetched with `apt-get download` (Debian's archive, the versions
# matching the installed server) and unpacked with `dpkg-deb -x` into a private root. A copy of the
# host's pg_config placed in that root reports every directory relative to itself (PostgreSQL's
# binaries are relocatable), so PGXS compiles against the private headers and installs into the
# private root. Bitcode is skipped (with_llvm=no: Debian's PGXS asks for clang-14, which the
# server does not need). libcurl is left out on purpose (--without-libcurl): Citus uses it only
# to phone home usage statistics to reports.citusdata.com, which a cluster must not do.
#
# Cache, keyed by Citus version + PostgreSQL major:
#   $CACHE/citus-<v>-pg<major>/{lib,extension}, BUILD-INFO   the built .so files and extension scripts
# Runtime tree, <repo>/.tools/citus-pg<major>/ (inside the clone because the members run as the
# postgres user, which must read it, like the rest of the clone; ~/.cache may be private): PostgreSQL's
# bin copied from the host (copies, not links: postgres resolves symlinks to find its share and lib
# directories), lib and share as links to the host's files, plus copies of Citus' files. Start
# postgres from <tree>/usr/lib/postgresql/<major>/bin and `shared_preload_libraries = citus` just
# works (PostgreSQL 15 has no extension_control_path, so a private tree is the way to add an
# extension without writing into /usr). Re-made (seconds) when the host's server version changes.
CITUS_VERSION=${CITUS_VERSION:-13.2.2}
CITUS_SHA256=dd2453caec20a830e5e63f1def5c5a98cb6f57ae510407cdcd800916fcdab430
# The vendored archive: $CITUS_ARCHIVE, else shared/vendor/ in the first directory above the clone
# that has one (../shared/vendor for the main checkout, ../../shared/vendor for a worktree).
citus_archive() {
  [ -n "${CITUS_ARCHIVE:-}" ] && { echo "$CITUS_ARCHIVE"; return; }
  local d=$ROOT
  while [ "$d" != / ]; do d=$(dirname "$d"); [ -f "$d/shared/vendor/citus-$CITUS_VERSION.tar.gz" ] && { echo "$d/shared/vendor/citus-$CITUS_VERSION.tar.gz"; return; }; done
  echo "shared/vendor/citus-$CITUS_VERSION.tar.gz (not found above $ROOT)"
}

citus_pg_major() { ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sed 's|/usr/lib/postgresql/\([0-9]*\)/.*|\1|' | sort -n | tail -n 1; }

citus_build() { # $1 = major, $2 = output dir (the cache entry)
  local major=$1 out=$2 work=$2.tmp
  local archive; archive=$(citus_archive)
  local srv; srv=$(dpkg-query -W -f='${Version}' "postgresql-$major")
  local pq; pq=$(dpkg-query -W -f='${Version}' libpq5)
  [ -f "$archive" ] || { log "Citus archive not found at $archive: set CITUS_ARCHIVE to the vendored citus-$CITUS_VERSION.tar.gz"; return 1; }
  local got; got=$(sha256sum "$archive" | cut -d' ' -f1)
  [ "$got" = "$CITUS_SHA256" ] || { log "$archive: sha256 $got, expected $CITUS_SHA256; refusing to build (re-copy the vendored archive)"; return 1; }
  rm -rf "$work"; mkdir -p "$work/debs" "$work/root"
  local debs=("postgresql-server-dev-$major=$srv" "libpq-dev=$pq" liblz4-dev libzstd-dev libkrb5-dev krb5-multidev libssl-dev)
  log "fetching build headers from Debian's archive: ${debs[*]}"
  # apt-get download runs as _apt when it can write the directory, else as root (with a warning)
  chmod 777 "$work/debs"
  (cd "$work/debs" && apt-get download -qq "${debs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
  local n; n=$(ls "$work/debs"/*.deb 2>/dev/null | wc -l)
  [ "$n" = ${#debs[@]} ] || { log "apt-get download got $n of ${#debs[@]} packages (is apt's index current? try apt-get update)"; return 1; }
  for f in "$work"/debs/*.deb; do dpkg-deb -x "$f" "$work/root"; done
  local r=$work/root usr=$work/root/usr/lib/postgresql/$major libdir=$work/root/usr/lib/x86_64-linux-gnu
  mkdir -p "$usr/bin"
  cp "/usr/lib/postgresql/$major/bin/pg_config" "$usr/bin/"
  ln -sfn "/usr/lib/postgresql/$major/lib/pgxs" "$usr/lib/pgxs"
  # The -dev packages' libfoo.so links point at runtime libraries that live in the host, not here.
  local l; for l in "$libdir"/*.so; do [ -L "$l" ] && [ ! -e "$l" ] && ln -sfn "/usr/lib/x86_64-linux-gnu/$(readlink "$l")" "$l"; done
  tar -xzf "$archive" -C "$work"
  local src=$work/citus-$CITUS_VERSION pgc=$usr/bin/pg_config
  log "building Citus $CITUS_VERSION against PostgreSQL $srv (about 4-6 minutes cold on 2 cores)"
  local t0; t0=$(date +%s)
  (cd "$src" && ./configure -q PG_CONFIG="$pgc" --without-libcurl \
      CPPFLAGS="-I$r/usr/include" LDFLAGS="-L$libdir" >"$work/configure.log" 2>&1) \
    || { log "configure failed: see $work/configure.log"; return 1; }
  (cd "$src" && nice -n 10 make -s -j"$(nproc)" with_llvm=no PG_CONFIG="$pgc" >"$work/make.log" 2>&1 \
    && touch "$work/stamp" && make -s with_llvm=no PG_CONFIG="$pgc" install-extension >>"$work/make.log" 2>&1) \
    || { log "make failed: see $work/make.log"; return 1; }
  local secs=$(( $(date +%s) - t0 ))
  mkdir -p "$work/out/lib" "$work/out/extension"
  find "$usr/lib" -maxdepth 1 -type f -name '*.so' -newer "$work/stamp" -exec cp {} "$work/out/lib/" \;
  find "$r/usr/share/postgresql/$major/extension" -maxdepth 1 -type f -newer "$work/stamp" -exec cp {} "$work/out/extension/" \;
  [ -f "$work/out/lib/citus.so" ] && [ -f "$work/out/extension/citus.control" ] || { log "build produced no citus.so/citus.control: see $work/make.log"; return 1; }
  printf 'citus %s (sha256 %s)\npostgresql %s (headers postgresql-server-dev-%s=%s)\nbuilt %s in %ss on %s cores\nconfigure: --without-libcurl, make with_llvm=no\n' \
    "$CITUS_VERSION" "$CITUS_SHA256" "$major" "$major" "$srv" "$(date -u +%FT%TZ)" "$secs" "$(nproc)" > "$work/out/BUILD-INFO"
  rm -rf "$out"; mv "$work/out" "$out"; rm -rf "$work"
  log "Citus $CITUS_VERSION built in ${secs}s"
}

citus_runtime() { # $1 = major, $2 = the built cache entry, $3 = runtime tree
  local major=$1 ext=$2 tree=$3
  local stamp; stamp="citus $CITUS_VERSION, postgresql $(dpkg-query -W -f='${Version}' "postgresql-$major")"
  [ "$(cat "$tree/.done" 2>/dev/null)" = "$stamp" ] && return 0
  local t=$tree.tmp bin=/usr/lib/postgresql/$major/bin lib=/usr/lib/postgresql/$major/lib share=/usr/share/postgresql/$major
  rm -rf "$t"; mkdir -p "$t/usr/lib/postgresql/$major/lib" "$t/usr/share/postgresql/$major/extension"
  cp -a "$bin" "$t/usr/lib/postgresql/$major/bin"
  local f
  for f in "$lib"/*; do ln -s "$f" "$t/usr/lib/postgresql/$major/lib/"; done
  for f in "$share"/*; do [ "$(basename "$f")" = extension ] || ln -s "$f" "$t/usr/share/postgresql/$major/"; done
  for f in "$share"/extension/*; do ln -s "$f" "$t/usr/share/postgresql/$major/extension/"; done
  for f in "$ext"/lib/*; do rm -f "$t/usr/lib/postgresql/$major/lib/$(basename "$f")"; cp "$f" "$t/usr/lib/postgresql/$major/lib/"; done
  for f in "$ext"/extension/*; do rm -f "$t/usr/share/postgresql/$major/extension/$(basename "$f")"; cp "$f" "$t/usr/share/postgresql/$major/extension/"; done
  cp "$ext/BUILD-INFO" "$t/"
  echo "$stamp" > "$t/.done"; rm -rf "$tree"; mv "$t" "$tree"
}

citus() {
  local major; major=$(citus_pg_major)
  [ -n "$major" ] || { log "no /usr/lib/postgresql/<major>/bin/postgres: run test/toolchain/install.sh debs first"; return 1; }
  local d=$CACHE/citus-$CITUS_VERSION-pg$major
  [ -f "$d/lib/citus.so" ] || citus_build "$major" "$d"
  [ -L "$ROOT/.tools/citus-pg$major" ] && rm -f "$ROOT/.tools/citus-pg$major"
  citus_runtime "$major" "$d" "$ROOT/.tools/citus-pg$major"
}
