#!/usr/bin/env bash
# Regenerates the screenshots of the web console in docs/console/ (shown in
# the README and docs/console.md): builds kms, starts it with --dev, and
# drives headless Chromium through the main screens.
set -euo pipefail
cd "$(dirname "$0")/.."
KMS_CONSOLE_SCREENSHOTS="$PWD/docs/console" go test -count=1 -run '^TestConsoleScreenshots$' ./cmd/kms
ls docs/console/*.png
