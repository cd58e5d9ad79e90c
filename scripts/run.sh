#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`: set up what is missing, build, boot the fast kernel, load rkmem,
# show what it offers, unload it and power off. FLAVOR=debug runs it on the
# debug kernel instead.
set -euo pipefail
. "$(dirname "$0")/env.sh"
exec "$RKMEM_ROOT/scripts/guest.sh" "${FLAVOR:-fast}" run
