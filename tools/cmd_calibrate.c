#include "cli.h"
int cmd_calibrate(int argc, char **argv) { (void)argc; (void)argv; return cli_error("calibrate", "not yet"); }
