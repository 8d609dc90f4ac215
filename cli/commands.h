#ifndef APQ_CLI_COMMANDS_H_
#define APQ_CLI_COMMANDS_H_

#include "common/help.h"

namespace apq {

// apq's commands and the flags each reads (what --help prints).
const ProgramHelp& ApqHelp();

// `apq COMMAND [flags]`: parses the command line, asks the aggregator,
// prints the answer; returns the exit status (kExitOk...).
int RunApq(int argc, char** argv);

}  // namespace apq

#endif  // APQ_CLI_COMMANDS_H_
