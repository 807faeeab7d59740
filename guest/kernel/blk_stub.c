/* placeholder replaced by the virtio-blk commands */
#include "kernel.h"
const struct command blk_commands[] = { { NULL, NULL, NULL } };
