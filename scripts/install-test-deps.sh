#!/usr/bin/env bash
# Install the servers the tests start on loopback, from Debian packages, when missing:
# PostgreSQL (server binaries; the tests run their own private cluster).
# In CI (CI=true) a failure to install is an error: tests that need a server must run there.
set -uo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

packages=()
have_postgres || packages+=(postgresql)

if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

echo "installing Debian packages for the tests: ${packages[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt_get=(sudo -n apt-get)
else
  apt_get=()
fi

if [ ${#apt_get[@]} -gt 0 ] && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -qq \
   && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends "${packages[@]}"; then
  exit 0
fi

if [ "${CI:-}" = "true" ]; then
  echo "error: could not install ${packages[*]}; the server tests must run in CI" >&2
  exit 1
fi
echo "warning: could not install ${packages[*]} (no root or sudo); the tests that need them will be skipped outside CI" >&2
exit 0
