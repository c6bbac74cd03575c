/* Placeholder until the subcommand lands (replaced by its owner). */
#include "cli/cli.h"

int cmd_import(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_fail("import", "not built yet");
}
