#ifndef APQ_COMMON_HELP_H_
#define APQ_COMMON_HELP_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace apq {

// What --help prints. A flag's meaning is its ABSL_FLAG help string, written
// once; these tables only say which command reads which flags. The man
// pages are made from the same output (help2man, at build time).
struct CommandHelp {
  std::string name;                // "top"; empty for a program without commands
  std::string synopsis;            // "apq top --cluster NAME [flags]"
  std::string summary;             // one line
  std::vector<std::string> flags;  // abseil names (underscores)
};

struct ProgramHelp {
  std::string program;  // "apq"
  std::string summary;  // one line
  std::vector<CommandHelp> commands;
  std::vector<std::string> common_flags;  // read by every command
  std::string notes;                      // trailing paragraphs: examples, files
  // The first argument names a command (apq top); otherwise the commands
  // are modes chosen by flags (apq-agent --local).
  bool takes_command = false;
};

// Exit statuses, the same for every apq binary.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   // could not do it: unreachable server, missing kernel feature...
inline constexpr int kExitBadUsage = 2;  // a flag, value or command that is not understood

// The help of one command (its synopsis and flags, then the common ones), or
// with an empty command the whole program: every command and flag. Flags are
// shown with dashes, their default and meaning.
std::string HelpText(const ProgramHelp& program, const std::string& command);

// Parses the command line like ParseFlags (common/flag_names.h), answering
// --help, -h and --version (and `help [COMMAND]` where the program takes a
// command) by printing to standard output and exiting 0. An unknown command
// after help exits with kExitBadUsage.
std::vector<std::string> ParseFlagsOrHelp(int argc, char** argv, const ProgramHelp& program);

// The exit status for a run's outcome; an error is printed first as one
// line, "PROGRAM: message". InvalidArgument is bad usage.
int ExitStatusOf(const std::string& program, const absl::Status& status);

// The project version, from CMake.
const char* Version();

}  // namespace apq

#endif  // APQ_COMMON_HELP_H_
