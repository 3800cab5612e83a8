#!/bin/sh
# Before removing presenced's .deb: the service stopped (where systemd
# runs). The data in /var/lib/presenced and the user stay.
set -e
if [ -d /run/systemd/system ]; then
  systemctl disable --now presenced >/dev/null 2>&1 || true
fi
exit 0
