// apq: asks the aggregator about the fleet (cli/commands.cc; apq --help).
#include "cli/commands.h"

int main(int argc, char** argv) { return apq::RunApq(argc, argv); }
