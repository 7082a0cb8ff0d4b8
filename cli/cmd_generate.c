#include "cli.h"
int cmd_generate(int argc, char **argv) { (void)argc; (void)argv; return CLI_USAGE; }
