#!/bin/sh
# After installing presenced's .deb: its system user, its data directory,
# and systemd told of the unit (where systemd runs). The service is not
# started: settings first (/etc/presenced/presenced.env), then
# systemctl enable --now presenced.
set -e
if ! getent passwd presenced >/dev/null; then
  if command -v adduser >/dev/null 2>&1; then
    adduser --system --group --home /var/lib/presenced --no-create-home --gecos "presenced" presenced >/dev/null
  else
    useradd --system --user-group --home-dir /var/lib/presenced --no-create-home --shell /usr/sbin/nologin presenced
  fi
fi
install -d -m 0750 -o presenced -g presenced /var/lib/presenced
chgrp presenced /etc/presenced /etc/presenced/presenced.env 2>/dev/null || true
chmod 0750 /etc/presenced
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
