#!/usr/bin/env bash
# Install the Debian packages that only the tests need, so that no test skips for lack of one:
#   slurm-wlm, munge   tests/launchers/test_slurm.py starts a private one-node SLURM
#                      (and needs /etc/munge/munge.key, created here when missing);
#   slurm-wlm-torque   SLURM's qsub/qstat wrappers, which run the PBS variant of the queue
#                      script there (Debian has no PBS or Torque server).
# Runs as root on Debian only (what CI is); elsewhere it installs nothing and says what is missing
# (the tests that need it then skip with the same command in their reason).
# Quiet and idempotent: no apt work when everything is installed.
set -euo pipefail

packages=(slurm-wlm munge slurm-wlm-torque)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then
        echo "installing test packages (apt-get install ${missing[*]}) ..." >&2
        # apt's and debconf's chatter only when something fails
        if ! log=$({ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends "${missing[@]}"; } 2>&1); then
            echo "$log" >&2
            echo "installing ${missing[*]} failed (output above)" >&2
            exit 1
        fi
    else
        echo "not installing test packages ${missing[*]} (needs root on Debian); their tests" \
             "skip. To run them: as root, apt-get install ${missing[*]}" >&2
    fi
fi

# munge's postinst creates the key, but not on every set-up (a key removed, an image built
# without it): the SLURM test copies it into its private munge.
if [ "$(id -u)" = "0" ] && [ ! -f /etc/munge/munge.key ] && command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
fi
