# shellcheck shell=bash
# Source every harness library, in dependency order.
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=lib/kernel.sh
source "$HARNESS_DIR/lib/kernel.sh"
# shellcheck source=lib/stage.sh
source "$HARNESS_DIR/lib/stage.sh"
# shellcheck source=lib/vm.sh
source "$HARNESS_DIR/lib/vm.sh"
# shellcheck source=lib/ephemeral.sh
source "$HARNESS_DIR/lib/ephemeral.sh"
# shellcheck source=lib/build.sh
source "$HARNESS_DIR/lib/build.sh"
# shellcheck source=lib/scenario.sh
source "$HARNESS_DIR/lib/scenario.sh"
# shellcheck source=lib/distro.sh
source "$HARNESS_DIR/lib/distro.sh"
# shellcheck source=lib/distro-ephemeral.sh
source "$HARNESS_DIR/lib/distro-ephemeral.sh"
# shellcheck source=lib/snp.sh
source "$HARNESS_DIR/lib/snp.sh"
# shellcheck source=lib/tdx.sh
source "$HARNESS_DIR/lib/tdx.sh"
# shellcheck source=lib/signed.sh
source "$HARNESS_DIR/lib/signed.sh"
# shellcheck source=lib/hostile.sh
source "$HARNESS_DIR/lib/hostile.sh"
# shellcheck source=lib/volumes.sh
source "$HARNESS_DIR/lib/volumes.sh"
# shellcheck source=lib/systemd.sh
source "$HARNESS_DIR/lib/systemd.sh"
# shellcheck source=lib/state.sh
source "$HARNESS_DIR/lib/state.sh"
# shellcheck source=lib/rekey.sh
source "$HARNESS_DIR/lib/rekey.sh"
# shellcheck source=lib/scenarios.sh
source "$HARNESS_DIR/lib/scenarios.sh"
