#!/usr/bin/env bash
# Install Debian's Chromium and its WebDriver for the browser tests (tests/test_browser.py), when missing.
# Idempotent and quiet: does nothing when both are there; runs `apt-get update` only when apt does not
# know the packages yet. Never fails the caller: without root or apt it says why and exits 0, and the
# browser tests then skip with that reason.
set -u

have() { command -v "$1" >/dev/null 2>&1; }
browser() { have chromium || have chromium-browser; }

if browser && have chromedriver; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install_browser: not root, so Chromium is not installed; the browser tests will skip" >&2
  exit 0
fi
if ! have apt-get; then
  echo "install_browser: no apt-get here, so Chromium is not installed; the browser tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
pkgs="chromium chromium-driver"
known() { apt-cache show chromium chromium-driver >/dev/null 2>&1; }
if ! known; then
  apt-get update -qq >/dev/null 2>&1 || true
fi
if ! known; then
  echo "install_browser: apt knows no chromium/chromium-driver packages; the browser tests will skip" >&2
  exit 0
fi
if ! apt-get install -y -qq $pkgs >/dev/null 2>&1; then
  # package lists can be stale (a mirror moved on): refresh once and retry
  apt-get update -qq >/dev/null 2>&1 || true
  if ! apt-get install -y -qq $pkgs >/dev/null 2>&1; then
    echo "install_browser: apt-get install $pkgs failed; the browser tests will skip" >&2
    exit 0
  fi
fi
echo "install_browser: installed $pkgs" >&2
exit 0
