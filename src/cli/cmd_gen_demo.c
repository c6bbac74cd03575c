/* Placeholder until the subcommand lands (replaced by its owner). */
#include "cli/cli.h"

int cmd_gen_demo(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_fail("gen_demo", "not built yet");
}
