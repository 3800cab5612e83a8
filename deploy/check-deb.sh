#!/usr/bin/env bash
# Checks an installed presenced .deb (CI installs it first): the unit
# systemd has for presenced runs the packaged binary, that binary's
# version is the package's, the unit verifies, and the user and the data
# directory exist. Where systemd is not running (a container), the unit
# file the package installed is read instead of `systemctl cat`.
set -euo pipefail
pkg=$(dpkg-query -W -f='${Version}' presenced)
if [ -d /run/systemd/system ]; then
  unit=$(systemctl cat presenced)
else
  unit=$(cat /lib/systemd/system/presenced.service)
fi
exec_start=$(printf '%s\n' "$unit" | sed -n 's/^ExecStart=//p')
bin=${exec_start%% *}
[ "$bin" = /usr/bin/presenced ] || { echo "check-deb: the unit runs $bin, not /usr/bin/presenced" >&2; exit 1; }
got=$("$bin" version)
[ "$got" = "presenced $pkg" ] || { echo "check-deb: $bin says '$got', the package is $pkg" >&2; exit 1; }
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify --man=no /lib/systemd/system/presenced.service 2>&1) || { echo "$out" >&2; exit 1; }
  [ -z "$out" ] || { echo "check-deb: systemd-analyze verify: $out" >&2; exit 1; }
fi
getent passwd presenced >/dev/null || { echo "check-deb: no presenced user" >&2; exit 1; }
[ "$(stat -c %U /var/lib/presenced)" = presenced ] || { echo "check-deb: /var/lib/presenced is not presenced's" >&2; exit 1; }
"$bin" config check >/dev/null
echo "check-deb: presenced $pkg installed; the unit runs $bin; it says '$got'"
