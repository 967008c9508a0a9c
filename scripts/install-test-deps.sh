#!/usr/bin/env bash
# Install the servers the tests start on loopback, from Debian packages, when missing:
# PostgreSQL (server binaries; the tests run their own private cluster) and the Orthanc PACS
# with its DICOMweb plugin (the tests run their own Orthanc process with a temporary storage),
# and Chromium (the web catalogue's end-to-end tests drive it headless through Playwright).
# In CI (CI=true) a failure to install is an error: tests that need a server must run there.
set -uo pipefail

ORTHANC_DICOMWEB_PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

have_orthanc() {
  command -v Orthanc >/dev/null 2>&1
}

have_orthanc_dicomweb() {
  [ -e "$ORTHANC_DICOMWEB_PLUGIN" ]
}

have_chromium() {
  command -v chromium >/dev/null 2>&1
}

missing_packages() {
  packages=()
  have_postgres || packages+=(postgresql)
  have_orthanc || packages+=(orthanc)
  have_orthanc_dicomweb || packages+=(orthanc-dicomweb)
  have_chromium || packages+=(chromium)
}

missing_packages
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
wanted=("${packages[@]}")

echo "installing Debian packages for the tests: ${wanted[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt_get=(sudo -n apt-get)
else
  apt_get=()
fi

if [ ${#apt_get[@]} -gt 0 ]; then
  # The packages' maintainer scripts try to start the system services (refused in containers
  # by policy-rc.d, exit 101, or failing without an init system). The tests never use those
  # services, so what counts is whether the programs are there afterwards, not apt's status.
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -qq \
    && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends \
      "${wanted[@]}"
  status=$?
  missing_packages
  if [ ${#packages[@]} -eq 0 ]; then
    if [ $status -ne 0 ]; then
      echo "note: apt-get exited with $status (service start refused?), but ${wanted[*]} are installed" >&2
    fi
    exit 0
  fi
fi

if [ "${CI:-}" = "true" ]; then
  echo "error: could not install ${packages[*]}; the server tests must run in CI" >&2
  exit 1
fi
echo "warning: could not install ${packages[*]} (no root or sudo, or apt-get failed); the tests that need them will be skipped outside CI" >&2
exit 0
