#include "common/help.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/flag_names.h"

namespace apq {
namespace {

constexpr size_t kWidth = 78;

// Words of `text` filled into lines of kWidth, each starting with `indent`.
std::string Wrapped(const std::string& text, const std::string& indent) {
  std::string out, line = indent;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line.size() > indent.size() && line.size() + 1 + word.size() > kWidth) {
      absl::StrAppend(&out, line, "\n");
      line = indent;
    }
    absl::StrAppend(&line, line.size() > indent.size() ? " " : "", word);
  }
  if (line.size() > indent.size()) absl::StrAppend(&out, line, "\n");
  return out;
}

std::string FlagLines(const std::string& name) {
  const std::string shown = absl::StrCat("--", absl::StrReplaceAll(name, {{"_", "-"}}));
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr) return absl::StrCat("  ", shown, "\n");  // a table naming a flag not linked in
  const std::string default_value = flag->DefaultValue();
  std::string head = absl::StrCat("  ", shown);
  if (flag->IsOfType<bool>()) {
    if (default_value == "true") absl::StrAppend(&head, " (default: on)");
  } else if (!default_value.empty()) {
    absl::StrAppend(&head, " (default: ", default_value, ")");
  }
  return absl::StrCat(head, "\n", Wrapped(flag->Help(), "        "));
}

const CommandHelp* Find(const ProgramHelp& program, const std::string& name) {
  for (const CommandHelp& command : program.commands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::string ExitStatuses() {
  return absl::StrCat("Exit status:\n  ", kExitOk, "  done\n  ", kExitFailure,
                      "  failed: the message on standard error says why (a server out of reach, a kernel\n"
                      "     feature missing, a file that cannot be written...)\n  ",
                      kExitBadUsage, "  bad usage: a flag, value or command not understood\n");
}

std::string CommandSection(const CommandHelp& command, bool heading) {
  std::string out;
  if (heading) absl::StrAppend(&out, "\n", command.synopsis, "\n", Wrapped(command.summary, "  "));
  if (!command.flags.empty()) absl::StrAppend(&out, heading ? "" : "\nFlags:\n");
  for (const std::string& flag : command.flags) absl::StrAppend(&out, FlagLines(flag));
  return out;
}

// Abseil exits 1 on a flag it does not know; bad usage is kExitBadUsage.
void RefuseUnknownFlags(const std::vector<std::string>& args, const std::string& program) {
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') continue;
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    name = name.substr(0, name.find('='));
    std::replace(name.begin(), name.end(), '-', '_');
    if (absl::FindCommandLineFlag(name) != nullptr) continue;
    if (absl::StartsWith(name, "no")) {  // --noexplain: a boolean turned off
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && flag->IsOfType<bool>()) continue;
    }
    std::cerr << program << ": unknown flag " << arg.substr(0, arg.find('=')) << " (" << program
              << " --help lists the flags)\n";
    std::exit(kExitBadUsage);
  }
}

// A flag file's first MiB and a byte: enough to find its --flagfile lines,
// and to tell it is too large, without reading a huge file whole.
absl::StatusOr<std::string> ReadFlagFileHead(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(path);
  std::string head((1 << 20) + 1, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head;
}

}  // namespace

std::string HelpText(const ProgramHelp& program, const std::string& command_name) {
  std::string out;
  if (const CommandHelp* command = Find(program, command_name); command != nullptr && program.takes_command) {
    absl::StrAppend(&out, "Usage: ", command->synopsis, "\n", Wrapped(command->summary, ""));
    absl::StrAppend(&out, CommandSection(*command, false));
  } else {
    absl::StrAppend(&out, Wrapped(absl::StrCat(program.program, ": ", program.summary), ""), "\nUsage:\n");
    for (const CommandHelp& command : program.commands) {
      absl::StrAppend(&out, "  ", command.synopsis, "\n");
    }
    if (program.takes_command) {
      absl::StrAppend(&out, "  ", program.program, " help COMMAND   (or COMMAND --help): one command's flags\n");
    }
    for (const CommandHelp& command : program.commands) {
      absl::StrAppend(&out, CommandSection(command, !command.name.empty()));
    }
  }
  if (!program.common_flags.empty()) {
    absl::StrAppend(&out, "\n", program.takes_command ? "Flags of every command:\n" : "Flags of every mode:\n");
    for (const std::string& flag : program.common_flags) absl::StrAppend(&out, FlagLines(flag));
  }
  absl::StrAppend(&out, "\n", ExitStatuses());
  if (!program.notes.empty()) absl::StrAppend(&out, "\n", program.notes);
  return out;
}

std::vector<std::string> ParseFlagsOrHelp(int argc, char** argv, const ProgramHelp& program) {
  // --help and --version are taken out before abseil sees them: its own
  // answer lists only flags of files named after the program.
  std::vector<std::string> kept;
  bool help = false, version = false, flags_ended = false;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i > 0 && arg == "--") flags_ended = true;
    if (i > 0 && !flags_ended && (arg == "--help" || arg == "-h" || arg == "-help" || arg == "--helpfull")) {
      help = true;
    } else if (i > 0 && !flags_ended && arg == "--version") {
      version = true;
    } else {
      kept.push_back(arg);
    }
  }
  RefuseUnknownFlags(kept, program.program);
  if (absl::Status files = CheckFlagFiles(kept, ReadFlagFileHead); !files.ok()) {
    std::cerr << program.program << ": " << files.message() << "\n";
    std::exit(kExitBadUsage);
  }
  std::vector<char*> pointers;
  for (std::string& arg : kept) pointers.push_back(arg.data());
  std::vector<std::string> positional = ParseFlags(static_cast<int>(pointers.size()), pointers.data());
  if (version) {
    std::cout << program.program << " " << Version() << "\n";
    std::exit(kExitOk);
  }
  const bool has_commands = program.takes_command;
  if (has_commands && positional.size() >= 2 && positional[1] == "help") {
    help = true;
    positional.erase(positional.begin() + 1);
  }
  if (!help) return positional;
  const std::string command = has_commands && positional.size() >= 2 ? positional[1] : "";
  if (!command.empty() && Find(program, command) == nullptr) {
    std::cerr << program.program << ": no command '" << command << "' (" << program.program << " --help lists them)\n";
    std::exit(kExitBadUsage);
  }
  std::cout << HelpText(program, command);
  std::exit(kExitOk);
}

int ExitStatusOf(const std::string& program, const absl::Status& status) {
  if (status.ok()) return kExitOk;
  std::cerr << program << ": " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitBadUsage : kExitFailure;
}

const char* Version() { return APQ_VERSION; }

}  // namespace apq
