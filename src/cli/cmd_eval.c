/* Placeholder until the subcommand lands (replaced by its owner). */
#include "cli/cli.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_fail("eval", "not built yet");
}
